"""Source backends. `open_source` builds the right one from a stored connector."""
from __future__ import annotations

from shared.connectors import Connector
from shared.secrets import SecretBox
from shared.sources.base import Listing, ListFailure, Reader, Source, SourceEntry

__all__ = ["Listing", "ListFailure", "Reader", "Source", "SourceEntry", "open_source"]


def open_source(c: Connector, box: SecretBox) -> Source:
    from shared.sources.smb import SmbSource  # imported lazily: the API never needs smbprotocol

    server = c.smb
    return SmbSource(server.host, server.share, server.path, port=server.port,
                     username=c.username, password=box.open(c.password_enc), domain=c.domain)
