"""SharePoint-specific behaviour of SharePointSource, through the real msgraph-sdk and
azure-identity against the Graph emulator: delta listings, throttling, credentials, owners,
hash verification and memory."""
from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest

from shared import errors
from shared.sources.base import DeltaCursor
from tests.conformance.remotes import MiB, in_threads, SharePointRemote, read_all, sha
from tests.graph.certs import make_app_cert


@pytest.fixture
def sp(graph):
    remote = SharePointRemote(graph)
    page_size, graph.page_size = graph.page_size, 7  # several pages: nextLinks are followed
    yield remote
    graph.page_size = page_size
    graph.throttle(0)
    graph.throttle_downloads(0)
    graph.corrupt_next_download(0)
    remote.cleanup()


def recorded_waits(source, really: bool = False) -> list[float]:
    """Our own throttling waits (not the SDK's), recorded; skipped unless `really`."""
    waits: list[float] = []
    real = source.graph.sleep

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if really:
            await real(seconds)

    source.graph.sleep = sleep
    return waits


def ids(listing) -> dict[str, str]:
    return {p: e.file_id for p, e in listing.entries.items()}


# --- delta ------------------------------------------------------------------------------

def test_incremental_list_is_the_full_listing_from_delta_calls_only(graph, sp):
    for rel in ("a/keep.txt", "a/modify.txt", "a/rename.txt", "b/delete.txt", "c/d/deep.txt"):
        sp.put(rel, rel.encode())
    source = sp.make_source()
    first = source.list()
    assert first.complete and not first.resynced and first.cursor.link
    saved = copy.deepcopy(first.cursor)

    sp.put("c/new.txt", b"new")
    sp.modify("a/modify.txt", b"modified!")
    sp.rename("a/rename.txt", "c/renamed.txt")
    sp.delete("b/delete.txt")
    graph.reset_counts()
    second = source.list(first.cursor)

    # One page of changes (a full enumeration would take 2 at 7 items a page); no walk, no GETs.
    assert graph.counts() == {"delta": 1}
    assert first.cursor == saved  # the caller's cursor is left as it was
    assert set(second.entries) == {"a/keep.txt", "a/modify.txt", "c/renamed.txt",
                                   "c/d/deep.txt", "c/new.txt"}
    assert second.entries == sp.make_source().list().entries  # = a full enumeration
    moved, was = second.entries["c/renamed.txt"], first.entries["a/rename.txt"]
    assert (moved.file_id, moved.content_tag) == (was.file_id, was.content_tag)  # a move
    assert second.entries["a/modify.txt"].size == 9
    assert second.entries["a/modify.txt"].content_tag != first.entries["a/modify.txt"].content_tag
    assert second.complete and not second.resynced and second.cursor.link != first.cursor.link


def test_cursor_survives_json_and_a_new_source(graph, sp):
    """The scanner stores the cursor as JSON and may resume it in another process."""
    sp.put("x/one.txt", b"1")
    first = sp.make_source().list()
    stored = json.loads(json.dumps({"link": first.cursor.link, "items": first.cursor.items}))
    sp.put("x/two.txt", b"2")
    graph.reset_counts()

    second = sp.make_source().list(DeltaCursor(stored["link"], stored["items"]))

    assert set(second.entries) == {"x/one.txt", "x/two.txt"}
    assert graph.counts()["delta"] == 1
    again = sp.make_source().list(second.cursor)  # nothing changed: the same listing
    assert again.entries == second.entries


def test_folder_rename_moves_every_descendant_and_keeps_file_ids(graph, sp):
    for rel in ("proj/a.txt", "proj/sub/b.txt", "proj/sub/deeper/c.txt", "other/d.txt"):
        sp.put(rel, rel.encode())
    source = sp.make_source()
    first = source.list()

    sp.rename("proj", "archive/proj-2023")  # only the folder changes on the server
    graph.reset_counts()
    second = source.list(first.cursor)

    assert graph.counts() == {"delta": 1}  # incremental: the children were not re-sent

    assert ids(second) == {
        "archive/proj-2023/a.txt": first.entries["proj/a.txt"].file_id,
        "archive/proj-2023/sub/b.txt": first.entries["proj/sub/b.txt"].file_id,
        "archive/proj-2023/sub/deeper/c.txt": first.entries["proj/sub/deeper/c.txt"].file_id,
        "other/d.txt": first.entries["other/d.txt"].file_id}
    assert second.entries["archive/proj-2023/a.txt"].content_tag == \
        first.entries["proj/a.txt"].content_tag


def test_deleted_folder_drops_its_subtree(graph, sp):
    for rel in ("gone/x.txt", "gone/deep/y.txt", "stay.txt"):
        sp.put(rel, b"z")
    source = sp.make_source()
    first = source.list()
    gone_ids = {e.file_id for p, e in first.entries.items() if p.startswith("gone/")}

    sp.delete("gone")
    graph.reset_counts()
    second = source.list(first.cursor)

    assert graph.counts() == {"delta": 1}

    assert set(second.entries) == {"stay.txt"}
    assert not gone_ids & set(second.cursor.items)  # the cursor does not keep the dead


def test_expired_delta_token_resyncs_to_the_same_listing(graph, sp):
    sp.put("f.txt", b"f")
    source = sp.make_source()
    first = source.list()
    sp.put("g/new.txt", b"new")
    graph.expire_delta_tokens()

    second = source.list(first.cursor)

    assert second.resynced and second.complete
    assert set(second.entries) == {"f.txt", "g/new.txt"}
    assert second.entries == sp.make_source().list().entries
    third = source.list(second.cursor)  # and the new position works
    assert not third.resynced and third.entries == second.entries


def test_missing_library_fails_the_root_with_not_found(graph, sp):
    sp.put("f.txt", b"f")
    first = sp.make_source().list()
    sp.remove_base()

    listing = sp.make_source().list(first.cursor)

    assert not listing.complete and listing.entries == {} and listing.cursor is None
    assert [(f.path, f.cause) for f in listing.failures] == [("", "not_found")]


# --- throttling ---------------------------------------------------------------------------

def test_throttled_list_and_read_still_succeed(graph, sp):
    data = os.urandom(2 * MiB + 5)
    sp.put("t/big.bin", data)
    sp.put("t/small.txt", b"s")
    source = sp.make_source()
    waits = recorded_waits(source, really=True)
    before = graph.counts().get("throttled", 0)

    graph.throttle(4, retry_after_s=1)  # the SDK retries 3 times, then we wait once more
    listing = source.list()

    assert listing.complete and set(listing.entries) == {"t/big.bin", "t/small.txt"}
    assert graph.counts()["throttled"] - before == 4 and waits == [1.0]
    impatient = sp.make_source(endpoint={"max_wait_s": 3.5})
    graph.throttle(100, retry_after_s=1)
    before = graph.counts()["throttled"]
    with pytest.raises(errors.Transient):
        impatient.stat("t/small.txt")
    # The SDK's 3 s of retries count against the 3.5 s: one more second would pass it.
    assert graph.counts()["throttled"] - before == 4
    graph.throttle(0)
    graph.throttle(1, retry_after_s=1)  # the item's GET (the SDK waits)
    graph.throttle_downloads(2, retry_after_s=1)  # the download URL (we wait)
    assert sha(read_all(source, "t/big.bin", step=MiB)) == sha(data)
    assert graph.counts()["download_throttled"] == 2 and waits == [1.0, 1.0, 1.0]


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


# --- owners -----------------------------------------------------------------------------------

def test_owners_are_the_creators_emails(graph, sp):
    graph.put_file(sp.drive, "a.txt", b"a", created_by_email="alice@contoso.com")
    graph.put_file(sp.drive, "a.txt", b"a2", modified_by_email="carol@contoso.com")
    graph.put_file(sp.drive, "d/b.txt", b"b", created_by_email="bob@contoso.com")
    source = sp.make_source()
    source.list()
    graph.reset_counts()

    assert source.owners(["a.txt", "d/b.txt"]) == {"a.txt": "alice@contoso.com",
                                                    "d/b.txt": "bob@contoso.com"}
    assert graph.counts() == {}  # known from the listing: no round trip
    sp.put("later.txt", b"l", owner="dave")  # created after the listing: looked up
    assert source.owners(["later.txt", "missing.txt", "a.txt"]) == {
        "later.txt": "dave@contoso.com", "missing.txt": None, "a.txt": "alice@contoso.com"}


# --- reading and writing ------------------------------------------------------------------------

def test_bytes_that_do_not_match_the_hash_raise_source_changed(graph, sp):
    data = os.urandom(3 * MiB)
    sp.put("f.bin", data)
    source = sp.make_source()
    graph.corrupt_next_download()

    got = 0
    with pytest.raises(errors.SourceChanged) as info:
        with source.open_read("f.bin") as reader:
            while chunk := reader.read(MiB):
                got += len(chunk)
    assert info.value.path == "f.bin" and "quickXorHash" in str(info.value)
    assert got < len(data)  # the consumer never saw a whole file of wrong bytes
    assert sha(read_all(source, "f.bin")) == sha(data)  # the next read is fine


def test_30_mb_are_read_byte_exact_in_bounded_memory(graph, sp):
    size = 30 * 1000 * 1000
    data = os.urandom(size)
    sp.put("big.bin", data)
    want, data = sha(data), None
    source = sp.make_source()
    digest = hashlib.sha256()

    tracemalloc.start()
    try:
        with source.open_read("big.bin") as reader:
            assert reader.entry.size == size
            while chunk := reader.read(256 * 1024):
                digest.update(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert digest.hexdigest() == want
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB for a {size / MiB:.0f} MiB file"


def test_requests_in_flight_are_capped_per_source(graph, sp):
    files = {f"c/{i}.bin": os.urandom(8 * MiB + i) for i in range(6)}  # > socket buffers
    for rel, data in files.items():
        sp.put(rel, data)
    source = sp.make_source(endpoint={"concurrency": 2})
    source.list()
    graph.reset_in_flight()
    results: dict[str, str] = {}

    def read(rel: str) -> None:
        digest = hashlib.sha256()
        with source.open_read(rel) as reader:
            while chunk := reader.read(256 * 1024):
                digest.update(chunk)
                time.sleep(0.005)  # a slow consumer (S3) keeps its download open
        results[rel] = digest.hexdigest()

    in_threads(read, list(files))

    assert results == {rel: sha(data) for rel, data in files.items()}
    assert graph.max_in_flight == 2  # 6 threads, 2 at a time


def test_a_short_stream_leaves_the_old_file_and_no_upload(graph, sp):
    sp.put("keep.bin", b"version one")
    source = sp.make_source()
    sessions = len(graph.emu.sessions)

    with pytest.raises(errors.SyncError) as info:
        source.write("keep.bin", io.BytesIO(os.urandom(MiB)), 2 * MiB)
    with pytest.raises(errors.SyncError):
        source.write("new.bin", io.BytesIO(b"abc"), 10)

    assert info.value.path == "keep.bin"
    assert sp.read("keep.bin") == b"version one" and not sp.exists("new.bin")
    assert len(graph.emu.sessions) == sessions  # the upload sessions were cancelled


def test_write_uploads_in_chunks_and_refuses_names_sharepoint_cannot_hold(graph, sp):
    data = os.urandom(12 * MiB + 1)
    source = sp.make_source()
    graph.reset_counts()

    entry = source.write("w/deep/er/file.bin", io.BytesIO(data), len(data))

    assert sp.read("w/deep/er/file.bin") == data and entry == source.stat("w/deep/er/file.bin")
    assert graph.counts()["upload_chunk"] == 3  # 5 MiB chunks, multiples of 320 KiB
    for bad in ("a:b.txt", "q?.txt", "CON", "~$lock.docx", "trailing /x.txt"):
        with pytest.raises(errors.InvalidName):
            source.write(bad, io.BytesIO(b"x"), 1)
    empty = source.write("w/empty.txt", io.BytesIO(b""), 0)
    assert empty.size == 0 and sp.read("w/empty.txt") == b""


def test_delete_refuses_a_folder(graph, sp):
    sp.put("folder/f.txt", b"f")
    source = sp.make_source()

    with pytest.raises(errors.NotFound):
        source.delete("folder")

    assert sp.exists("folder/f.txt")
