"""SharePointSource when Graph pushes back: throttling (including past the SDK's 180 s cap)
and refused, revoked or replaced credentials."""
from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from shared import errors
from tests.conformance.remotes import MiB, read_all, recorded_waits, sha
from tests.graph.certs import make_app_cert

# --- throttling ---------------------------------------------------------------------------

def test_throttled_list_and_read_still_succeed(graph, sp):
    data = os.urandom(2 * MiB + 5)
    sp.put("t/big.bin", data)
    sp.put("t/small.txt", b"s")
    source = sp.make_source()
    waits = recorded_waits(source, really=True)
    before = graph.counts().get("throttled", 0)

    graph.throttle(4, retry_after_s=1)  # each waited out by us (the SDK's retries are off)
    listing = source.list()

    assert listing.complete and set(listing.entries) == {"t/big.bin", "t/small.txt"}
    assert graph.counts()["throttled"] - before == 4 and waits == [1.0] * 4
    impatient = sp.make_source(endpoint={"max_wait_s": 3.5})
    graph.throttle(100, retry_after_s=1)
    before = graph.counts()["throttled"]
    with pytest.raises(errors.Transient):
        impatient.stat("t/small.txt")
    # Three waits of 1 s and the attempts' time: one more second would pass the 3.5 s.
    assert graph.counts()["throttled"] - before == 4
    graph.throttle(0)
    graph.throttle(1, retry_after_s=1)  # the item's GET
    graph.throttle_downloads(2, retry_after_s=1)  # the download URL (we wait)
    assert sha(read_all(source, "t/big.bin", step=MiB)) == sha(data)
    assert graph.counts()["download_throttled"] == 2 and waits == [1.0] * 4 + [1.0] * 3


def test_a_retry_after_holds_back_the_sources_other_requests(graph, sp):
    """Requests sent while throttled still count against the tenant's limits: once one
    download is told to wait, another starting meanwhile waits for the same moment instead of
    being refused in turn."""
    sp.put("h/a.txt", b"a")
    sp.put("h/b.txt", b"b")
    source = sp.make_source()
    assert set(source.list().entries) >= {"h/a.txt", "h/b.txt"}
    graph.emu.download_log.clear()
    before = graph.counts().get("download_throttled", 0)
    graph.throttle_downloads(1, retry_after_s=2)
    first = threading.Thread(target=read_all, args=(source, "h/a.txt"))
    first.start()
    deadline = time.monotonic() + 10
    while graph.counts().get("download_throttled", 0) == before:
        assert time.monotonic() < deadline
        time.sleep(0.02)

    assert read_all(source, "h/b.txt") == b"b"
    first.join(10)
    log = list(graph.emu.download_log)
    refused = next(t for t, status in log if status == 429)
    served = [t for t, status in log if status == 200 and t > refused]
    assert len(served) == 2, log
    assert all(t - refused >= 1.5 for t in served), [t - refused for t in served]


def test_a_retry_after_of_zero_backs_off_instead_of_asking_again_at_once(graph, sp):
    """A download URL throttled with "Retry-After: 0" over and over: asked again after 2, 4,
    8 ... s, not at once (before, the waits were 0 and the throttling budget, never used up by
    them, would have let a server repeating it be asked again at once for 15 minutes)."""
    sp.put("z/f.txt", b"data")
    source = sp.make_source()
    waits = recorded_waits(source)
    graph.throttle_downloads(4, retry_after_s=0)

    assert read_all(source, "z/f.txt") == b"data"

    assert waits == [2.0, 4.0, 8.0, 16.0]
    graph.throttle_downloads(0)


def test_retry_after_beyond_the_sdks_cap_is_waited_out(graph, sp):
    """The SDK hands back a 429 at once when Retry-After >= 180 s; we wait it out."""
    sp.put("f.txt", b"data")
    source = sp.make_source()
    waits = recorded_waits(source)
    started = time.monotonic()

    graph.throttle(1, retry_after_s=315)  # what SharePoint has sent
    assert source.stat("f.txt").size == 4
    graph.throttle(2, retry_after_s=200)
    assert set(source.list().entries) == {"f.txt"}
    graph.throttle_downloads(1, retry_after_s=400)
    assert read_all(source, "f.txt") == b"data"

    assert waits == [315.0, 200.0, 200.0, 400.0]
    assert time.monotonic() - started < 60  # nobody slept minutes: the SDK did not retry


def test_throttling_past_max_wait_is_transient(graph, sp):
    sp.put("f.txt", b"data")
    source = sp.make_source(endpoint={"max_wait_s": 700})
    waits = recorded_waits(source)

    graph.throttle(100, retry_after_s=300)
    with pytest.raises(errors.Transient) as info:
        source.stat("f.txt")
    assert info.value.path == "f.txt" and "throttl" in str(info.value)
    assert waits == [300.0, 300.0]  # a third wait would pass 700 s
    listing = source.list()
    assert not listing.complete and [(f.path, f.cause) for f in listing.failures] == \
        [("", "transient")]
    graph.throttle(0)
    graph.throttle_downloads(100, retry_after_s=800)
    with pytest.raises(errors.Transient):
        read_all(source, "f.txt")
    graph.throttle_downloads(0)
    assert read_all(source, "f.txt") == b"data"  # and it works once Graph lets us


# --- credentials ----------------------------------------------------------------------------

def test_revoked_secret_is_auth_failed_and_a_new_secret_works(graph, sp):
    sp.put("f.txt", b"f")
    source = sp.make_source()
    assert source.list().complete
    old, new = graph.client_secret, "rotated~" + uuid.uuid4().hex

    graph.revoke_secret()  # an admin deleted the secret ...
    graph.revoke_tokens()  # ... and the tokens issued with it are no longer accepted
    try:
        with pytest.raises(errors.AuthFailed) as info:
            source.stat("f.txt")
        listing = source.list()
    finally:
        graph.restore_secret(new)

    assert "AADSTS7000215" in str(info.value) and old not in str(info.value)
    assert [(f.path, f.cause) for f in listing.failures] == [("", "auth_failed")]
    assert old not in listing.failures[0].message
    assert set(sp.make_source(client_secret=new).list().entries) == {"f.txt"}
    with pytest.raises(errors.AuthFailed):
        sp.make_source(client_secret=old).stat("f.txt")


def test_revoked_tokens_are_replaced_without_a_new_source(graph, sp):
    sp.put("f.txt", b"f")
    source = sp.make_source()
    assert source.stat("f.txt").size == 1
    tokens = graph.counts().get("token", 0)

    graph.revoke_tokens()

    assert source.stat("f.txt").size == 1
    assert graph.counts()["token"] == tokens + 1  # one fresh token, then on as before


def test_certificate_credential_works_and_an_unknown_certificate_does_not(graph, sp, tmp_path):
    data = os.urandom(400_000)
    sp.put("c/f.bin", data)
    source = sp.make_source(certificate_pem=Path(graph.cert_path).read_text())

    assert set(source.list().entries) == {"c/f.bin"}
    assert read_all(source, "c/f.bin") == data
    stranger = make_app_cert(tmp_path).key_and_cert_pem  # not registered on the app
    with pytest.raises(errors.AuthFailed) as info:
        sp.make_source(certificate_pem=Path(stranger).read_text()).stat("c/f.bin")
    assert "AADSTS700027" in str(info.value)
    with pytest.raises(errors.AuthFailed):
        sp.make_source(certificate_pem="not a certificate").stat("c/f.bin")
