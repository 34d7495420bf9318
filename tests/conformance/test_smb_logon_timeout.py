"""A file server that stops answering during the logon (before its NEGOTIATE response, after
it, or after the session is set up, before the share's TREE_CONNECT answer) fails the logon
within the limit, as a transient error, instead of holding the scan or job (and its slot, and
its run's lease) for good: smbprotocol itself waits for those answers without a timeout. The
third was found by the 2,000-connector bench: one first run scanned for good, its lease
renewed."""
from __future__ import annotations

import time

import pytest

from shared import errors
from shared.sources.smb import source as smb_source
from shared.sources.smb.source import SmbSource
from tests.fixtures.proxy import TcpProxy

TREE_CONNECT = 0x0003  # MS-SMB2 2.2.1


@pytest.mark.parametrize("unanswered", ["negotiate", "session_setup", "tree_connect"])
def test_an_unanswered_logon_fails_within_the_limit(samba, monkeypatch, unanswered):
    monkeypatch.setattr(smb_source, "LOGON_TIMEOUT_S", 2.0)
    proxy = TcpProxy(samba.port)
    if unanswered == "negotiate":
        proxy.stall_after(0)  # connected; the NEGOTIATE response never comes
    elif unanswered == "session_setup":
        proxy.stall_after(1)  # the NEGOTIATE response passes; SESSION_SETUP's never comes
    else:
        proxy.stall_on_smb2(TREE_CONNECT)  # logged on; the share's tree is never connected
    src = SmbSource("127.0.0.1", samba.share, port=proxy.port, username=samba.username,
                    password=samba.password, connection_timeout=2,
                    encryption="off")  # unsealed: the proxy reads which answer it is
    try:
        start = time.monotonic()
        listing = src.list()  # a listing reports its root's failure rather than raising
        assert time.monotonic() - start < 15
        (root,) = [f for f in listing.failures if f.path == ""]
        assert root.cause == errors.Transient.cause, root
        assert "did not answer the logon" in root.message
        proxy.stall_after(10_000)  # answering again: the next attempt logs on and lists
        proxy.stall_on_smb2(None)
        proxy.cut()
        proxy.restore()
        assert src.list().complete
    finally:
        src.close()
        proxy.close()
