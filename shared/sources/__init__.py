"""Source backends. `open_source` builds the right one from a stored connector."""
from __future__ import annotations

from typing import TYPE_CHECKING

from shared.connectors import Connector
from shared.secrets import SecretBox
from shared.settings import Settings
from shared.sources.base import DeltaCursor, Listing, ListFailure, Reader, Source, SourceEntry

if TYPE_CHECKING:
    from shared.sources.graph import GraphCredentials, GraphEndpoint

__all__ = ["DeltaCursor", "Listing", "ListFailure", "Reader", "Source", "SourceEntry",
           "graph_credentials", "graph_endpoint", "open_source"]


def open_source(c: Connector, box: SecretBox, settings: Settings) -> Source:
    # Backends are imported lazily: a process needs only the client libraries it uses.
    if c.kind == "sharepoint":
        from shared.sources.sharepoint import SharePointSource

        return SharePointSource(graph_endpoint(settings), graph_credentials(c, box),
                                c.drive_id or "")
    from shared.sources.smb import SmbSource

    server = c.smb
    return SmbSource(server.host, server.share, server.path, port=server.port,
                     username=c.username or "", password=box.open(c.password_enc or ""),
                     domain=c.domain, encryption=c.smb_encryption)


def graph_endpoint(settings: Settings) -> "GraphEndpoint":
    from shared.sources.graph import GraphEndpoint

    return GraphEndpoint(authority=settings.graph_authority, graph_base=settings.graph_base_url,
                         ca_bundle=settings.graph_ca_bundle,
                         concurrency=settings.graph_concurrency,
                         max_wait_s=settings.graph_max_wait_s)


def graph_credentials(c: Connector, box: SecretBox) -> "GraphCredentials":
    from shared.sources.graph import GraphCredentials

    def opened(sealed: str | None) -> str | None:
        return box.open(sealed) if sealed else None

    return GraphCredentials(tenant_id=c.tenant_id or "", client_id=c.client_id or "",
                            client_secret=opened(c.client_secret_enc),
                            certificate_pem=opened(c.certificate_enc),
                            certificate_password=opened(c.certificate_password_enc))
