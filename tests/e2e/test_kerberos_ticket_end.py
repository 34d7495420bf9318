"""A Kerberos logon outlives its ticket (LONG: runs for about 8 minutes; SCAIDRIVE_LONG_TESTS=1
runs it): when the ticket a session was made with ends, the file server ends the session
(NETWORK_SESSION_EXPIRED) and the connector must log on again with a new ticket, without a
failure and without a file going to the default owner, and a file being read at that moment
goes on where it stopped. Tickets live 10 hours by default, so every Kerberos connector meets
this twice a day.

The ticket's life is shortened on our side (krb5.conf `ticket_lifetime`, as a domain's policy
would); 6 minutes is the shortest this DC's file server takes (at 2 it refuses the ticket as
already expired). The short CI variants of what happens then, with the connection dropped
instead: tests/conformance/test_listing.py (a folder read again, owners asked again) and
tests/conformance/test_content.py (a read going on where it stopped)."""
from __future__ import annotations

import hashlib
import logging
import os
import time

import pytest

from shared.sources.smb.source import SmbSource
from tests.conformance.remotes import MiB, read_all
from tests.fixtures.ad_dc import KRB5_CONF, serve_dc

pytestmark = [pytest.mark.e2e, pytest.mark.long]
TICKET_LIFE_S = 360


@pytest.fixture(scope="module")
def dc():
    yield from serve_dc()


def session_ids(source: SmbSource) -> set[int]:
    return {sid for conn in source._cache.values() for sid in conn.session_table}


def test_a_kerberos_session_ended_with_its_ticket_is_made_again(dc, monkeypatch, tmp_path,
                                                                 caplog):
    conf = tmp_path / "krb5.conf"
    conf.write_text(KRB5_CONF.read_text().replace(
        "[libdefaults]\n", f"[libdefaults]\n\tticket_lifetime = {TICKET_LIFE_S}s\n", 1))
    monkeypatch.setenv("KRB5_CONFIG", str(conf))
    source, streamer = (
        SmbSource(dc.address, dc.share, folder, username=dc.service_user,
                  password=dc.service_password, domain=dc.realm.lower(), auth="kerberos")
        for folder in ("reports", "large"))
    data = os.urandom(20 * MiB)
    dc.write_file("large/stream.bin", data, dc.sids["alice"])
    try:
        files = sorted(source.list().entries)
        owners = source.owners(files)
        assert owners["alice.txt"] == dc.sids["alice"]
        alice = read_all(source, "alice.txt")
        first = session_ids(source)
        with streamer.open_read("stream.bin") as reader:
            head = reader.read(MiB)

            time.sleep(TICKET_LIFE_S + 30)
            with caplog.at_level(logging.INFO, logger="shared.sources.smb"):
                assert source.owners(files) == owners  # the first call past the ticket's end
                rest = reader.read()  # the other source's stream meets the end too
            assert reader.resumed == 1 and "going on from there" in caplog.text
        assert hashlib.sha256(head + rest).digest() == hashlib.sha256(data).digest()

        assert "asking the rest again" in caplog.text  # the server had ended the session
        assert session_ids(source).isdisjoint(first)  # a new logon, with a new ticket
        listing = source.list()
        assert listing.complete and not listing.failures and sorted(listing.entries) == files
        assert read_all(source, "alice.txt") == alice
    finally:
        source.close()
        streamer.close()
