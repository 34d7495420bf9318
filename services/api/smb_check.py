"""Checks an SMB connector at its file server when it is saved (and on the console's "Test
connection"): the server answers, the account logs on, the share and folder can be listed,
and a two-way connector's account may write there (shared/sources/smb/access_check.py). A
refusal is a 422 naming the field in plain words, not a failed first sync hours later."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import HTTPException

from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.sources.factory import open_source

if TYPE_CHECKING:
    from shared.sources.smb.access_check import Check


async def smb_checks(rt: Runtime, c: Connector) -> list[Check]:
    """Each check with its outcome, stopping at the first refusal (a fresh session: nothing
    is kept from it)."""
    def run() -> list[Check]:
        from shared.sources.smb.access_check import SmbAccessCheck  # smbprotocol: lazily
        source = open_source(c, rt.box, rt.settings)
        try:
            if not isinstance(source, SmbAccessCheck):
                raise TypeError(f"not an SMB connector: {c.kind}")
            return source.check_access(write=c.sync_mode == "two_way")
        finally:
            source.close()
    return await asyncio.to_thread(run)


async def check_smb(rt: Runtime, c: Connector) -> None:
    """422 at the field to blame when the file server refuses the connector."""
    failed = [ch for ch in await smb_checks(rt, c) if not ch.ok]
    if failed:
        raise HTTPException(422, [{"loc": ["body", ch.field or "server"], "type": "value_error",
                                   "msg": ch.message, "detail": ch.detail} for ch in failed])


def as_json(checks: list[Check]) -> list[dict]:
    return [{"check": ch.name, "ok": ch.ok, "message": ch.message, "field": ch.field,
             "detail": ch.detail} for ch in checks]
