"""SharePointSource reading and writing: hash verification, bounded memory, the concurrency
cap, upload sessions, refused names."""
from __future__ import annotations

import hashlib
import io
import os
import time
import tracemalloc

import pytest

from shared import errors
from tests.conformance.remotes import MiB, in_threads, read_all, sha

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


def test_a_download_that_breaks_goes_on_where_it_stopped(graph, sp):
    """Broken twice, it asks for the rest twice (Range), never for the bytes it had."""
    data = os.urandom(6 * MiB + 5)
    sp.put("f.bin", data)
    source = sp.make_source()
    graph.break_downloads(2 * MiB, MiB)
    before = graph.emu.counts["download"]

    with source.open_read("f.bin") as reader:
        got = reader.read()
        assert reader.resumed == 2
    assert sha(got) == sha(data)
    assert graph.emu.counts["download"] - before == 3


def test_a_download_broken_again_before_a_byte_is_transient(graph, sp):
    data = os.urandom(3 * MiB)
    sp.put("f.bin", data)
    source = sp.make_source()
    graph.break_downloads(MiB, 0)

    with pytest.raises(errors.Transient) as info:
        with source.open_read("f.bin") as reader:
            while reader.read(MiB):
                pass
    assert info.value.path == "f.bin"
    assert sha(read_all(source, "f.bin")) == sha(data)  # the next read is fine


def test_a_download_whose_url_expired_before_it_broke_goes_on_with_a_new_url(graph, sp):
    """The rest is asked of the URL the item gives now (its hour was over), from where the
    download stopped: one new request for the item, none for the bytes already had."""
    data = os.urandom(6 * MiB + 5)
    sp.put("f.bin", data)
    source = sp.make_source()
    graph.expire_download_urls(401, after=1)  # this download's URL dies once it began
    graph.break_downloads(2 * MiB)
    before = graph.emu.counts["download"]

    with source.open_read("f.bin") as reader:
        got = reader.read()
        assert reader.resumed == 1
    assert sha(got) == sha(data)
    assert graph.emu.counts["download"] - before == 3  # the first, the one refused, the rest


def test_a_file_changed_while_its_download_waited_for_a_new_url_is_not_spliced(graph, sp):
    data = os.urandom(6 * MiB)
    sp.put("f.bin", data)
    source = sp.make_source()
    graph.expire_download_urls(401, after=1)
    graph.break_downloads(2 * MiB)

    with pytest.raises(errors.SourceChanged) as info:
        with source.open_read("f.bin") as reader:
            reader.read(MiB)
            sp.put("f.bin", os.urandom(6 * MiB))  # saved again meanwhile, same size
            reader.read()
    assert info.value.path == "f.bin" and "new URL" in str(info.value)


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


# --- download URLs from folder listings (folder_cache) -------------------------------------------

@pytest.fixture
def listed(graph, sp):
    """`sp` whose files are read as transfers read them: with the listed size as the hint."""
    page = graph.children_page_size
    yield sp
    graph.children_page_size = page
    graph.emu.expire_downloads_after = None


def _put_many(sp, folder: str, n: int) -> dict[str, bytes]:
    files = {f"{folder}/f{i:03d}.txt".lstrip("/"): f"{folder} {i}\n".encode() * (i + 1)
             for i in range(n)}
    for rel, data in files.items():
        sp.put(rel, data)
    return files


def _read(source, rel: str, size: int | None, **kw) -> tuple[bytes, object]:
    with source.open_read(rel, size_hint=size, **kw) as reader:
        return reader.read(), reader.entry


def test_reads_of_a_folder_cost_a_listing_page_not_a_request_each(graph, listed):
    files = _put_many(listed, "team", 30) | _put_many(listed, "", 5)
    source = listed.make_source()
    graph.reset_counts()

    got = {rel: _read(source, rel, len(data))[0] for rel, data in files.items()}

    assert got == files
    counts = graph.counts()
    assert counts["children"] == 2 and "item" not in counts  # one page a folder
    assert counts["download"] == 35 and graph.request_counts()["graph"] == 2
    assert _read(source, "team/f003.txt", len(files["team/f003.txt"]))[0] == \
        files["team/f003.txt"]  # read again (a retry): each listed URL serves one read
    assert graph.counts()["item"] == 1


def test_folders_with_names_that_need_encoding_are_listed(graph, listed):
    files = _put_many(listed, "Ünïcode #1 %20 & 'q' + ; =/deep [x]", 3)
    source = listed.make_source()
    graph.reset_counts()

    assert {rel: _read(source, rel, len(data))[0] for rel, data in files.items()} == files
    assert graph.counts()["children"] == 1 and "item" not in graph.counts()


def test_without_a_version_wanted_a_read_fetches_the_item(graph, listed):
    files = _put_many(listed, "d", 3)
    source = listed.make_source()
    graph.reset_counts()

    assert {rel: _read(source, rel, None)[0] for rel in files} == files

    assert graph.counts()["item"] == 3 and "children" not in graph.counts()


def test_a_wide_folder_is_listed_no_faster_than_it_is_read(graph, listed):
    """Never more listing pages than reads asked of the folder: one changed file in a wide
    folder costs a page and its item, and reading every file costs about a page per page."""
    graph.children_page_size = 10
    files = _put_many(listed, "wide", 60)
    last = "wide/f059.txt"
    source = listed.make_source()
    graph.reset_counts()

    assert _read(source, last, len(files[last]))[0] == files[last]
    assert graph.request_counts()["graph"] == 2  # a page of the folder, then the item
    assert (graph.counts()["children"], graph.counts()["item"]) == (1, 1)

    source = listed.make_source()
    graph.reset_counts()
    got = {rel: _read(source, rel, len(data))[0] for rel, data in files.items()}
    assert got == files
    assert graph.counts()["children"] == 6 and graph.counts().get("item", 0) == 0


@pytest.mark.parametrize("status", [401, 403, 404])
def test_expired_or_revoked_download_urls_fall_back_to_the_item(graph, listed, status):
    """The listed URLs die mid-run (their hour is over, access revoked, the file gone): each
    read asks Graph for the item again and reads the right version."""
    files = _put_many(listed, "x", 12)
    source = listed.make_source()
    names = sorted(files)
    for rel in names[:4]:
        assert _read(source, rel, len(files[rel]))[0] == files[rel]
    graph.expire_download_urls(status)
    listed.modify(names[5], b"a new version, longer than the listed one")
    files[names[5]] = b"a new version, longer than the listed one"
    graph.reset_counts()

    for rel in names[4:]:
        data, entry = _read(source, rel, len(files[rel]))
        assert data == files[rel] and entry == source.stat(rel)

    counts = graph.counts()
    assert counts["item"] == 8 + 8  # the 8 fall-backs, and the 8 stat() above
    assert "children" not in counts


def test_a_listed_version_other_than_the_one_wanted_is_read_afresh(graph, listed):
    listed.put("v/a.txt", b"aaaa")
    listed.put("v/same.txt", b"1111")
    listed.put("v/grown.txt", b"short")
    source = listed.make_source()
    assert _read(source, "v/a.txt", 4)[0] == b"aaaa"  # the folder is listed
    listed.modify("v/same.txt", b"2222")  # same size: only the version tells them apart
    listed.modify("v/grown.txt", b"longer than before")
    graph.reset_counts()

    wanted = source.stat("v/same.txt")
    data, entry = _read(source, "v/same.txt", 4, expect=wanted)
    assert (data, entry) == (b"2222", wanted)
    data, entry = _read(source, "v/grown.txt", len(b"longer than before"))
    assert (data, entry) == (b"longer than before", source.stat("v/grown.txt"))
    assert graph.counts()["item"] == 2 + 2  # the fresh items, and the two stat() calls


def test_a_download_that_does_not_match_its_listing_is_retried_not_failed(graph, listed):
    """Bytes other than the listed version's (the file changed after the listing): Transient,
    so the job is tried again, and the next read fetches the item afresh."""
    files = _put_many(listed, "s", 3)
    source = listed.make_source()
    first, second = sorted(files)[:2]
    assert _read(source, first, len(files[first]))[0] == files[first]
    graph.corrupt_next_download()

    with pytest.raises(errors.Transient) as info:
        _read(source, second, len(files[second]))
    assert not isinstance(info.value, errors.SourceChanged) and info.value.path == second
    assert _read(source, second, len(files[second]))[0] == files[second]


def test_listings_expire_once_their_folder_is_idle(graph, listed):
    """A listing serves one burst of reads: idle for a minute (or ten after its first page),
    it is dropped, so the next run reads no version older than its scan from it."""
    files = _put_many(listed, "idle", 4)
    source = listed.make_source()
    now = [1000.0]
    source.listed._clock = lambda: now[0]
    names = sorted(files)
    assert _read(source, names[0], len(files[names[0]]))[0] == files[names[0]]
    now[0] += 30
    assert _read(source, names[1], len(files[names[1]]))[0] == files[names[1]]
    graph.reset_counts()

    now[0] += 61
    assert _read(source, names[2], len(files[names[2]]))[0] == files[names[2]]
    assert graph.counts()["children"] == 1  # listed again
    now[0] += 601
    assert _read(source, names[3], len(files[names[3]]))[0] == files[names[3]]
    assert graph.counts()["children"] == 2


def test_writing_a_file_forgets_its_listed_version(graph, listed):
    files = _put_many(listed, "w", 2)
    source = listed.make_source()
    first, second = sorted(files)
    assert _read(source, first, len(files[first]))[0] == files[first]
    same_size = bytes(reversed(files[second]))

    source.write(second, io.BytesIO(same_size), len(same_size))

    assert _read(source, second, len(same_size))[0] == same_size
