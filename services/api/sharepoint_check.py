"""Checks a SharePoint connector against Microsoft Graph when it is saved: the credentials work,
the site exists, the application may use it, and it has the library. Wrong values are a 422
naming the field, not a failed first sync hours later. An application with `Sites.Selected`
that nobody granted this site gets 403 accessDenied from Graph: a 422 on `site_url` that says
which grant is missing (not a 502 "try again": trying again cannot help)."""
from __future__ import annotations

import asyncio

from fastapi import HTTPException

from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.errors import AuthFailed, ConfigInvalid, SyncError
from shared.sources.factory import graph_credentials, graph_endpoint


def _unprocessable(field: str, msg: str) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", field], "type": "value_error", "msg": msg}])


async def resolve_library(rt: Runtime, c: Connector) -> tuple[str, str]:
    """(site_id, drive_id) of the connector's library, with its (decrypted) credentials."""
    from shared.sources.sharepoint import (
        graph,  # msgraph is heavy: loaded on the first SharePoint save
    )
    from shared.sources.sharepoint.graph_errors import GRANT_MISSING, SiteAccessDenied

    try:
        return await asyncio.to_thread(
            graph.resolve_library, graph_endpoint(rt.settings), graph_credentials(c, rt.box),
            c.site_url or "", c.library or "")
    except SiteAccessDenied:
        raise _unprocessable("site_url", f"{GRANT_MISSING}.") from None
    except AuthFailed as exc:
        raise _unprocessable(c.credential or "client_secret",
                             f"Entra ID refused the application's credentials: {exc}") from None
    except ConfigInvalid as exc:
        raise _unprocessable(exc.field, str(exc)) from None
    except SyncError as exc:
        raise HTTPException(502, f"Microsoft Graph could not be asked ({exc.cause}): {exc}; "
                                 "nothing was saved, try again") from None
