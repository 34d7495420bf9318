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
