"""What every `Source` backend must do (in the spirit of rclone's fstests).

Each test gets a fresh, empty folder on the server as the source's base path. The `remote`
fixture changes the server behind the source's back, the way the file server's users do.
A new backend adds a `Remote` class and a param to `backend`.
"""
from __future__ import annotations

import io
import os
import threading
import time

import pytest

from shared import errors
from tests.conformance.remotes import MiB, in_threads, needs, read_all, sha


@pytest.mark.parametrize("size", [0, 1, 65536, 4 * MiB + 1, 20 * MiB + 7])
def test_open_read_returns_exactly_the_bytes(source, remote, size):
    data = os.urandom(size)
    remote.put("f.bin", data)

    with source.open_read("f.bin") as reader:
        assert (reader.entry.path, reader.entry.size) == ("f.bin", size)
        assert reader.entry == source.stat("f.bin")  # the version as listed/statted
        got = reader.read()
        assert reader.read() == b"" and reader.read(10) == b""
    assert len(got) == size and sha(got) == sha(data)
    if size:
        assert sha(read_all(source, "f.bin", step=1_000_003)) == sha(data)


@pytest.mark.parametrize("hint", [0, 7, 4096, 20 * MiB])
@pytest.mark.parametrize("actual", [b"", b"exactly", b"grown since it was listed" * 200, b"x"])
def test_size_hint_never_changes_what_is_read(source, remote, hint, actual):
    """The hint is the listed size; the file may have changed since. The bytes and the version
    returned are always the file's current ones."""
    remote.put("f", actual)

    with source.open_read("f", size_hint=hint) as reader:
        assert reader.entry == source.stat("f")
        data = reader.read(3) + reader.read()
    assert data == actual


@pytest.mark.parametrize(("size", "hint", "offset"), [
    (20 * MiB + 7, None, 8 * MiB), (20 * MiB + 7, None, 20 * MiB + 7), (3 * MiB, None, 0),
    (3000, 3000, 1234)])
def test_a_read_started_at_an_offset_returns_the_bytes_from_there(source, remote, size, hint,
                                                                  offset):
    """An upload going on with the parts a killed worker sent reads the rest only."""
    data = os.urandom(size)
    remote.put("f.bin", data)

    with source.open_read("f.bin", size_hint=hint) as reader:
        reader.start_at(offset)
        assert reader.entry.size == size  # the version is still the whole file's
        got = reader.read(1_000_003) + reader.read()
        assert reader.read() == b""
    assert len(got) == size - offset and sha(got) == sha(data[offset:])


def test_reading_does_not_lock_out_the_file_servers_users(source, source_factory, remote):
    remote.put("shared.docx", b"original " * 100_000)
    other_user = source_factory()  # its own connection, like a colleague's PC

    with source.open_read("shared.docx") as reader:
        first = reader.read(100)
        remote.save_from_another_client("shared.docx", b"edited")  # in place, over SMB
        assert remote.read("shared.docx") == b"edited"
        other_user.delete("shared.docx")  # also allowed while we read
    assert first == b"original " * 11 + b"o"
    assert not remote.exists("shared.docx")


@pytest.mark.parametrize("shrink_to", [1000, 16 * MiB + 100])
def test_a_file_that_shrinks_while_read_is_reported_not_truncated(source, remote, shrink_to):
    needs(remote, "changes_in_place", "serves a download from the version it started with")
    remote.put("growing.log", os.urandom(20 * MiB))

    with pytest.raises(errors.SourceChanged) as info:
        with source.open_read("growing.log") as reader:
            reader.read(1)
            remote.truncate("growing.log", shrink_to)
            while reader.read(MiB):
                pass
    assert info.value.path == "growing.log"


def test_a_read_that_loses_its_connection_goes_on_where_it_stopped(source, remote):
    """As rclone's reopening reader: the bytes already read are not read again, and the
    stream's content is whole (a 20 MiB file losing its connection twice)."""
    needs(remote, "can_drop_connections", "cannot drop its clients' connections")
    data = os.urandom(20 * MiB + 3)
    remote.put("big.bin", data)

    got = io.BytesIO()
    with source.open_read("big.bin") as reader:
        got.write(reader.read(1))
        remote.drop_connections()
        got.write(reader.read(7 * MiB))
        remote.drop_connections()
        while chunk := reader.read(MiB):
            got.write(chunk)
        assert reader.resumed == 2
    assert sha(got.getvalue()) == sha(data)


def test_readers_sharing_a_lost_connection_each_go_on_where_they_stopped(source, remote):
    """Four reads at once lose their one connection together: each goes on, none gives up
    (a read that found the connection already made again must not drop the new one)."""
    needs(remote, "can_drop_connections", "cannot drop its clients' connections")
    files = {f"r{i}.bin": os.urandom(12 * MiB + i) for i in range(4)}
    for rel, data in files.items():
        remote.put(rel, data)
    started, dropped = threading.Barrier(len(files) + 1), threading.Event()
    results: dict[str, tuple[str, int]] = {}

    def read(rel: str) -> None:
        with source.open_read(rel) as reader:
            got = io.BytesIO()
            got.write(reader.read(MiB))
            started.wait(30)
            dropped.wait(30)
            while chunk := reader.read(MiB):
                got.write(chunk)
            results[rel] = (sha(got.getvalue()), reader.resumed)

    threads = threading.Thread(target=in_threads, args=(read, list(files)), daemon=True)
    threads.start()
    started.wait(30)
    remote.drop_connections()
    dropped.set()
    threads.join(90)
    assert results == {rel: (sha(data), 1) for rel, data in files.items()}


def test_calls_sharing_a_lost_connection_each_go_on_on_a_new_one(source, remote):
    """Six threads' calls lose their one connection together, three times: each call is made
    again on a new connection and none fails (a call that failed late must not drop the
    connection another already made again)."""
    needs(remote, "can_drop_connections", "cannot drop its clients' connections")
    for i in range(6):
        remote.put(f"s{i}.txt", b"x" * i)
    stop, failures, calls = threading.Event(), [], [0]

    def stat(rel: str) -> None:
        while not stop.is_set():
            try:
                assert source.stat(rel).size == int(rel[1])
                calls[0] += 1
            except Exception as exc:
                failures.append(exc)
                return

    run_while_dropped(remote, stop, [(stat, f"s{i}.txt") for i in range(6)])
    assert failures == [] and calls[0] > 100


def test_listings_and_owner_lookups_sharing_a_lost_connection_each_go_on(source, remote):
    """Listings, owner lookups and single calls in six threads lose their one connection
    together, three times: each goes on on a new connection, none fails (a listing or a
    lookup that failed late must not drop the connection another thread already made again,
    whose call would fail with it)."""
    needs(remote, "can_drop_connections", "cannot drop its clients' connections")
    paths = [f"d/s{i}.txt" for i in range(6)]
    for i, rel in enumerate(paths):
        remote.put(rel, b"x" * i)
    stop, failures = threading.Event(), []
    calls = {"list": 0, "owners": 0, "stat": 0}

    def call(kind: str) -> None:
        while not stop.is_set():
            try:
                if kind == "list":
                    listing = source.list()
                    assert listing.failures == [] and set(paths) <= set(listing.entries)
                elif kind == "owners":
                    assert set(source.owners(paths)) == set(paths)
                else:
                    assert source.stat(paths[5]).size == 5
                calls[kind] += 1
            except Exception as exc:
                failures.append((kind, exc))
                return

    run_while_dropped(remote, stop, [(call, kind) for kind in ("list", "list", "owners",
                                                               "owners", "stat", "stat")])
    assert failures == [] and all(calls.values()), (failures, calls)


def run_while_dropped(remote, stop: threading.Event, calls: list[tuple]) -> None:
    """Each (function, argument) in a thread of its own, looping until `stop`, while the
    network drops every connection three times, half a second apart."""
    threads = [threading.Thread(target=fn, args=(arg,), daemon=True) for fn, arg in calls]
    for t in threads:
        t.start()
    for _ in range(3):
        time.sleep(0.5)
        remote.drop_connections()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)


def test_a_read_that_loses_its_new_connection_at_once_is_transient(source, remote):
    needs(remote, "can_drop_connections", "cannot drop its clients' connections")
    data = os.urandom(20 * MiB)
    remote.put("big.bin", data)

    with pytest.raises(errors.Transient) as info:
        with source.open_read("big.bin") as reader, remote.connection_cut_when_reopened(source):
            reader.read(1)
            remote.drop_connections()
            while reader.read(MiB):
                pass
    assert info.value.path == "big.bin"
    assert sha(read_all(source, "big.bin")) == sha(data)


@pytest.mark.parametrize("edit", ["rewritten in place, longer", "replaced, same size"])
def test_a_file_changed_while_its_read_waited_for_a_new_connection_is_not_spliced(
        source, remote, edit):
    needs(remote, "can_drop_connections", "cannot drop its clients' connections")
    remote.put("big.bin", os.urandom(20 * MiB))

    with pytest.raises(errors.SourceChanged) as info:
        with source.open_read("big.bin") as reader:
            reader.read(MiB)
            remote.drop_connections()
            if edit == "replaced, same size":  # as editors save: a new file renamed over it
                edited = os.urandom(20 * MiB)
                remote.put("big.bin.tmp", edited)
                remote.rename("big.bin.tmp", "big.bin")
            else:
                edited = os.urandom(20 * MiB + 1)
                remote.put("big.bin", edited)
            while reader.read(MiB):
                pass
    assert info.value.path == "big.bin" and info.value.cause == "changed_during_read"
    assert sha(read_all(source, "big.bin")) == sha(edited)


def test_concurrent_reads_on_one_source_do_not_mix_up(source, remote):
    files = {f"c{i}.bin": os.urandom(6 * MiB + i) for i in range(4)}
    for rel, data in files.items():
        remote.put(rel, data)
    results: dict[str, str] = {}

    def read(rel: str) -> None:
        results[rel] = sha(read_all(source, rel, step=MiB))

    in_threads(read, list(files))
    assert results == {rel: sha(data) for rel, data in files.items()}


def test_missing_paths_raise_not_found(source, remote):
    remote.put("here.txt", b"x")
    for call in (lambda: source.stat("gone.txt"), lambda: source.stat("no/such/dir/f.txt"),
                 lambda: source.delete("gone.txt"),
                 lambda: source.open_read("gone.txt").__enter__(),
                 lambda: source.open_read("gone.txt", size_hint=10).__enter__()):
        with pytest.raises(errors.NotFound) as info:
            call()
        assert info.value.path in ("gone.txt", "no/such/dir/f.txt")


def test_paths_that_escape_the_base_are_refused(source, remote):
    outside = remote.put_beside_base("outside.txt", b"not ours")
    try:
        for bad in (f"../{outside.name}", f"a/../../{outside.name}", "/etc/passwd", "a//b"):
            with pytest.raises(errors.InvalidName):
                source.stat(bad)
            with pytest.raises(errors.InvalidName):
                source.write(bad, io.BytesIO(b"x"), 1)
        assert outside.read_bytes() == b"not ours"
    finally:
        outside.unlink()


# --- writing ----------------------------------------------------------------------------

def test_write_then_read_back_creating_parent_folders(source, remote):
    data = os.urandom(9 * MiB + 3)

    entry = source.write("new/sub/folder/file.bin", io.BytesIO(data), len(data))

    assert (entry.path, entry.size) == ("new/sub/folder/file.bin", len(data))
    assert entry == source.stat("new/sub/folder/file.bin")
    assert sha(read_all(source, "new/sub/folder/file.bin")) == sha(data)
    assert sha(remote.read("new/sub/folder/file.bin")) == sha(data)
    assert source.list().entries == {"new/sub/folder/file.bin": entry}


def test_write_replaces_a_longer_file_entirely(source, remote):
    remote.put("r.txt", b"a much longer original content")

    entry = source.write("r.txt", io.BytesIO(b"short"), 5)

    assert entry.size == 5 and remote.read("r.txt") == b"short"


def test_write_of_a_short_stream_fails(source):
    with pytest.raises(errors.SyncError):
        source.write("short.bin", io.BytesIO(b"abc"), 10)


def test_delete_removes_the_file(source, remote):
    remote.put("a/b.txt", b"bye")
    remote.put("a/keep.txt", b"stay")

    source.delete("a/b.txt")

    assert not remote.exists("a/b.txt")
    assert set(source.list().entries) == {"a/keep.txt"}
    with pytest.raises(errors.NotFound):
        source.stat("a/b.txt")


def test_delete_removes_the_folders_it_empties_and_only_those(source, remote):
    needs(remote, "syncs_folders", "keeps its folders (they do not travel)")
    remote.put("a/b/c/last.txt", b"1")
    remote.put("a/b/.~scaidrive-0123456789abcdef.tmp", b"unlisted")  # no scan sees it
    remote.put("a/keep.txt", b"2")
    remote.mkdir("a/empty")
    remote.put("top.txt", b"3")

    source.delete("a/b/c/last.txt")
    assert not remote.exists("a/b/c") and remote.exists("a/b")  # a hidden file: not empty

    source.delete("a/keep.txt")
    assert remote.exists("a/empty")  # a folder it did not empty stays, and so its parent

    source.delete("top.txt")
    assert remote.exists("") and remote.exists("a")  # never the base


# --- owners, credentials, reconnects ------------------------------------------------------
