"""SMB transport security against real Samba servers: every message signed, encrypted whenever
the server offers it, `required` refused (not downgraded) by a server without encryption, and
one connector's session never serving another's.

What the client believes (smbprotocol's session flags) is checked against what the server saw:
`smbstatus -b` lists each session's encryption and signing, found by our TCP port."""
from __future__ import annotations

import subprocess
import uuid

import pytest
import smbclient._pool

from shared import errors
from shared.sources.smb.source import SmbSource, wants_encryption
from tests.fixtures.net import serve
from tests.fixtures.samba import SambaServer


@pytest.fixture
def folder(samba):
    name = f"sec-{uuid.uuid4().hex[:8]}"
    samba.write_file(f"{name}/x.txt", b"secret payload")
    return name


@pytest.fixture(scope="module")
def plain_samba():
    """A server that offers no encryption at all (SMB3 without the cipher negotiation)."""

    class PlainSamba(SambaServer):
        def __init__(self):
            super().__init__(global_options={"server smb encrypt": "off"})

    yield from serve(PlainSamba)


def source(samba, folder: str = "", **kw) -> SmbSource:
    return SmbSource(samba.host, samba.share, folder, port=samba.port,
                     **({"username": samba.username, "password": samba.password} | kw))


def session_of(src: SmbSource):
    conn = src._cache[src._key]
    return conn, next(iter(conn.session_table.values()))


def server_view(samba, src: SmbSource) -> dict[str, str]:
    """What smbd reports for this source's session: {"encryption": ..., "signing": ...}."""
    conn, _ = session_of(src)
    port = conn.transport._sock.getsockname()[1]
    out = subprocess.run(["smbstatus", "-s", str(samba.conf), "-b"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        if f"127.0.0.1:{port})" in line:
            fields = line.split(")", 1)[1].split()  # protocol, encryption, signing
            return {"protocol": fields[0], "encryption": fields[1], "signing": fields[2]}
    raise AssertionError(f"no session from port {port} in:\n{out}")


@pytest.mark.parametrize("mode", ["auto", "required"])
def test_encrypted_when_the_server_offers_it(samba, folder, mode):
    src = source(samba, folder, encryption=mode)
    try:
        assert set(src.list().entries) == {"x.txt"}
        conn, session = session_of(src)
        assert conn.require_signing and session.encrypt_data
        seen = server_view(samba, src)
        assert seen["protocol"].startswith("SMB3") and "AES" in seen["encryption"], seen
    finally:
        src.close()


def test_off_still_signs_every_message(samba, folder):
    src = source(samba, folder, encryption="off")
    try:
        assert src.stat("x.txt").size == 14
        conn, session = session_of(src)
        assert not session.encrypt_data and session.signing_required and session.signing_key
        seen = server_view(samba, src)
        assert seen["encryption"] == "-" and "AES" in seen["signing"], seen
    finally:
        src.close()


def test_required_is_refused_by_a_server_without_encryption(plain_samba):
    plain_samba.write_file("r/x.txt", b"x")
    src = source(plain_samba, "r", encryption="required")
    try:
        listing = src.list()
        assert not listing.complete and listing.entries == {}
        [root] = listing.failures
        assert (root.path, root.cause) == ("", "encryption_unavailable")
        assert "offers no SMB3 encryption" in root.message
        with pytest.raises(errors.EncryptionUnavailable) as err:
            src.stat("x.txt")
        assert err.value.field == "smb_encryption" and err.value.permanent
        assert src._cache == {}  # refused after NEGOTIATE: no session was ever set up
    finally:
        src.close()
    # `auto` falls back to signing only; it never fails for want of encryption.
    auto = source(plain_samba, "r")
    try:
        assert set(auto.list().entries) == {"x.txt"}
        assert server_view(plain_samba, auto)["encryption"] == "-"
        assert session_of(auto)[1].signing_required
    finally:
        auto.close()


def test_wants_encryption_table():
    assert [wants_encryption(m, True) for m in ("auto", "required", "off")] == [True, True, False]
    assert [wants_encryption(m, False) for m in ("auto", "off")] == [False, False]
    with pytest.raises(errors.EncryptionUnavailable):
        wants_encryption("required", False)
    with pytest.raises(ValueError):
        SmbSource("h", "s", username="u", password="p", encryption="maybe")


def test_one_connectors_session_never_serves_another(samba, folder):
    """Same server, same user name: a wrong password must fail even while another connector
    holds a live, authenticated session (a shared cache would hand that one out)."""
    good = source(samba, folder)
    wrong = source(samba, folder, password="not-the-password")
    stranger = source(samba, folder, username="alice", password="alice has no SMB password")
    try:
        assert good.stat("x.txt").size == 14
        with pytest.raises(errors.AuthFailed):
            wrong.stat("x.txt")
        listing = wrong.list()
        assert [(f.path, f.cause) for f in listing.failures] == [("", "auth_failed")]
        with pytest.raises(errors.AuthFailed):
            stranger.stat("x.txt")
        assert good.stat("x.txt").size == 14  # untouched by the others' failures
        assert good._cache is not wrong._cache and wrong._cache == {}
        # The process-wide smbclient cache is never used (it would be shared by every tenant).
        assert not any(str(samba.port) in key for key in smbclient._pool._SMB_CONNECTIONS)
    finally:
        for src in (good, wrong, stranger):
            src.close()


def test_a_connection_made_again_stays_sealed(samba, folder):
    """After the network dropped the connection, the one made again is encrypted too."""
    src = source(samba, folder)
    try:
        assert src.stat("x.txt").size == 14
        assert samba.drop_connections() >= 1
        assert src.stat("x.txt").size == 14
        assert session_of(src)[1].encrypt_data
        assert "AES" in server_view(samba, src)["encryption"]
    finally:
        src.close()
