"""A file server that stops answering during the logon (after its NEGOTIATE response) fails the
logon within the limit, as a transient error, instead of holding the scan or job (and its slot)
for good: smbprotocol itself waits for the SESSION_SETUP answer without a timeout."""
from __future__ import annotations

import time

from shared import errors
from shared.sources.smb import source as smb_source
from shared.sources.smb.source import SmbSource
from tests.fixtures.proxy import TcpProxy


def test_an_unanswered_logon_fails_within_the_limit(samba, monkeypatch):
    monkeypatch.setattr(smb_source, "LOGON_TIMEOUT_S", 2.0)
    proxy = TcpProxy(samba.port)
    proxy.stall_after(1)  # the NEGOTIATE response passes; SESSION_SETUP's never comes
    src = SmbSource("127.0.0.1", samba.share, port=proxy.port, username=samba.username,
                    password=samba.password, connection_timeout=2)
    try:
        start = time.monotonic()
        listing = src.list()  # a listing reports its root's failure rather than raising
        assert time.monotonic() - start < 15
        (root,) = [f for f in listing.failures if f.path == ""]
        assert root.cause == errors.Transient.cause, root
        assert "did not answer the logon" in root.message
        proxy.stall_after(10_000)  # answering again: the next attempt logs on and lists
        proxy.cut()
        proxy.restore()
        assert src.list().complete
    finally:
        src.close()
        proxy.close()
