"""`open_source` builds the backend a stored connector names, with its secrets opened; the
Graph endpoint and credentials of a SharePoint connector (also checked by the API on save)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from shared.config.connector_model import Connector
from shared.config.secrets import SecretBox
from shared.config.settings import Settings
from shared.sources.base import Source

if TYPE_CHECKING:
    from shared.sources.sharepoint.graph import GraphCredentials, GraphEndpoint

def open_source(c: Connector, box: SecretBox, settings: Settings) -> Source:
    # Backends are imported lazily: a process needs only the client libraries it uses.
    if c.kind == "sharepoint":
        from shared.sources.sharepoint.source import SharePointSource

        return SharePointSource(graph_endpoint(settings), graph_credentials(c, box),
                                c.drive_id or "")
    from shared.sources.smb.source import SmbSource

    server = c.smb
    return SmbSource(server.host, server.share, server.path, port=server.port,
                     username=c.username or "", password=box.open(c.password_enc or ""),
                     domain=c.domain, encryption=c.smb_encryption, auth=c.smb_auth)


def graph_endpoint(settings: Settings) -> GraphEndpoint:
    from shared.sources.sharepoint.graph import GraphEndpoint

    return GraphEndpoint(authority=settings.graph_authority, graph_base=settings.graph_base_url,
                         ca_bundle=settings.graph_ca_bundle,
                         concurrency=settings.graph_concurrency,
                         max_wait_s=settings.graph_max_wait_s)


def graph_credentials(c: Connector, box: SecretBox) -> GraphCredentials:
    from shared.sources.sharepoint.graph import GraphCredentials

    def opened(sealed: str | None) -> str | None:
        return box.open(sealed) if sealed else None

    return GraphCredentials(tenant_id=c.tenant_id or "", client_id=c.client_id or "",
                            client_secret=opened(c.client_secret_enc),
                            certificate_pem=opened(c.certificate_enc),
                            certificate_password=opened(c.certificate_password_enc))
