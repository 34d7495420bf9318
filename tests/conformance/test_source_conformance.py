"""What every `Source` backend must do (in the spirit of rclone's fstests).

Each test gets a fresh, empty folder on the server as the source's base path. The `remote`
fixture changes the server behind the source's back, the way the file server's users do.
A new backend adds a `Remote` class and a param to `backend`.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import threading
import uuid
from pathlib import Path

import pytest

from shared import errors
from shared.sources.base import Source

SID = re.compile(r"^S-1-\d+(-\d+)+$")
MiB = 1024 * 1024


class SmbRemote:
    """The server side of an SmbSource: the Samba share's directory on this machine."""

    def __init__(self, samba) -> None:
        self.samba = samba
        self.base = f"conf-{uuid.uuid4().hex[:10]}"
        self.root: Path = samba.mkdir(self.base)
        self.sources: list[Source] = []

    def make_source(self, **overrides) -> Source:
        from shared.sources.smb import SmbSource

        s = self.samba
        kw = {"port": s.port, "username": s.username, "password": s.password, **overrides}
        source = SmbSource(s.host, s.share, self.base, **kw)
        self.sources.append(source)
        return source

    def put(self, rel: str, data: bytes, owner: str | None = None) -> Path:
        return self.samba.write_file(f"{self.base}/{rel}", data, owner=owner)

    def mkdir(self, rel: str) -> Path:
        return self.samba.mkdir(f"{self.base}/{rel}")

    def put_beside_base(self, name: str, data: bytes) -> Path:
        """A file next to the source's base folder: out of its reach."""
        return self.samba.write_file(f"{self.base}-{name}", data)

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def modify(self, rel: str, data: bytes) -> None:
        with open(self.root / rel, "r+b") as f:
            f.write(data)
            f.truncate()

    def truncate(self, rel: str, size: int) -> None:
        os.truncate(self.root / rel, size)

    def rename(self, old: str, new: str) -> None:
        self.samba.mkdir(f"{self.base}/{new}".rpartition("/")[0])
        os.rename(self.root / old, self.root / new)

    def make_unreadable(self, rel: str) -> None:
        self.samba.make_unreadable_dir(f"{self.base}/{rel}")

    def symlink(self, rel: str, target: str) -> None:
        os.symlink(target, self.root / rel)

    def restart(self) -> None:
        self.samba.restart()

    def drop_connections(self) -> None:
        """The network between clients and server fails (the server keeps running)."""
        assert self.samba.drop_connections() >= 1

    @contextlib.contextmanager
    def connection_cut_while_listing(self, source, after: int):
        """The network drops once `after` names of one folder have been read."""
        real, seen = source._entries, 0

        def entries(d):
            nonlocal seen
            for raw in real(d):
                seen += 1
                if seen == after:
                    self.drop_connections()
                yield raw

        source._entries = entries
        try:
            yield
        finally:
            del source._entries

    def cleanup(self) -> None:
        for source in self.sources:
            source.close()
        for path, dirs, _ in os.walk(self.root):  # unreadable folders too
            for d in dirs:
                os.chmod(os.path.join(path, d), 0o755)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(params=["smb"])
def remote(request):
    remote = {"smb": lambda: SmbRemote(request.getfixturevalue("samba"))}[request.param]()
    yield remote
    remote.cleanup()


@pytest.fixture
def source_factory(remote):
    """Builds sources on the test's own folder; keyword overrides (e.g. a wrong password)."""
    return remote.make_source


@pytest.fixture
def source(source_factory) -> Source:
    return source_factory()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_all(source: Source, path: str, step: int | None = None) -> bytes:
    with source.open_read(path) as reader:
        if step is None:
            return reader.read()
        parts = []
        while chunk := reader.read(step):
            assert len(chunk) <= step
            parts.append(chunk)
        return b"".join(parts)


# --- listing ----------------------------------------------------------------------------

def test_lists_nested_unicode_and_empty_files_with_sizes(source, remote):
    files = {"top.txt": b"top level", "empty.bin": b"", "Ünïcødé/日本語.txt": "こんにちは".encode(),
             "deep/er/still/x.dat": os.urandom(12345), "with space/ä ö.txt": b"umlauts"}
    for rel, data in files.items():
        remote.put(rel, data)
    remote.mkdir("an empty folder")

    listing = source.list()

    assert listing.complete and listing.failures == []
    assert set(listing.entries) == set(files)  # files only: folders are implied
    for rel, data in files.items():
        entry = listing.entries[rel]
        assert (entry.path, entry.size) == (rel, len(data))
        assert entry == source.stat(rel)  # list and stat agree on size, mtime and id


def test_lists_a_folder_bigger_than_one_directory_reply(source, remote):
    names = [f"{i:05d}-" + "n" * 150 + ".txt" for i in range(3000)]  # > 1 MiB: several replies
    for name in names:
        remote.put(f"big/{name}", b"x")

    listing = source.list()

    assert listing.complete
    assert set(listing.entries) == {f"big/{n}" for n in names}


def test_mtime_is_the_servers_and_changes_after_a_modify_of_the_same_size(source, remote):
    path = remote.put("doc.txt", b"version one")
    when = 1_600_000_000_123_456_000  # ns since 1970, whole microseconds
    os.utime(path, ns=(when, when))
    before = source.stat("doc.txt")
    assert before.mtime_ns == when == source.list().entries["doc.txt"].mtime_ns

    remote.modify("doc.txt", b"version two")

    after = source.list().entries["doc.txt"]
    assert after.size == before.size
    assert after.mtime_ns > before.mtime_ns
    assert source.stat("doc.txt") == after


def test_file_id_is_stable_across_a_rename(source, remote):
    remote.put("old/name.txt", b"same file")
    before = source.list().entries["old/name.txt"]
    assert before.file_id

    remote.rename("old/name.txt", "new/place/renamed.txt")

    entries = source.list().entries
    assert "old/name.txt" not in entries
    assert entries["new/place/renamed.txt"].file_id == before.file_id
    other = remote.put("other.txt", b"another file")
    assert other and source.stat("other.txt").file_id != before.file_id


def test_unreadable_folder_is_a_failure_and_the_rest_is_listed(source, remote):
    remote.put("open/a.txt", b"a")
    remote.put("b.txt", b"b")
    remote.make_unreadable("open/locked")

    listing = source.list()

    assert listing.complete
    assert set(listing.entries) == {"open/a.txt", "b.txt"}
    assert [(f.path, f.cause) for f in listing.failures] == [("open/locked", "permission_denied")]


def test_linked_folders_are_not_followed_into_loops(source, remote):
    remote.put("real/x.txt", b"x")
    remote.symlink("real/loop", ".")  # real/loop/loop/... if followed
    remote.symlink("alias", "real")

    listing = source.list()

    assert listing.complete
    listed = set(listing.entries)
    assert len(listed) == 1 and listed <= {"real/x.txt", "alias/x.txt"}  # listed once
    assert {f.cause for f in listing.failures} == {"unsupported"}
    assert len(listing.failures) == 2  # the loop and whichever of real/alias came second


def test_connection_lost_mid_walk_gives_an_incomplete_listing(source, remote):
    remote.put("a.txt", b"a")
    for i in range(3000):  # more than one directory reply
        remote.put(f"big/{i:05d}-" + "n" * 150, b"")

    with remote.connection_cut_while_listing(source, after=100):
        listing = source.list()

    assert not listing.complete
    assert [(f.path, f.cause) for f in listing.failures] == [("big", "transient")]
    assert len([p for p in listing.entries if p.startswith("big/")]) < 3000
    again = source.list()  # and the next run connects again
    assert again.complete and len(again.entries) == 3001


def test_listing_a_missing_base_fails_the_root(source_factory, remote):
    shutil.rmtree(remote.root)

    listing = source_factory().list()

    assert not listing.complete and listing.entries == {}
    assert [(f.path, f.cause) for f in listing.failures] == [("", "not_found")]


# --- reading ----------------------------------------------------------------------------

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


def test_reading_does_not_lock_out_the_file_servers_users(source, source_factory, remote):
    remote.put("shared.docx", b"original " * 100_000)
    other_user = source_factory()  # its own connection, like a colleague's PC

    with source.open_read("shared.docx") as reader:
        first = reader.read(100)
        entry = other_user.write("shared.docx", io.BytesIO(b"edited"), 6)
        assert entry.size == 6
        other_user.delete("shared.docx")  # also allowed while we read
    assert first == b"original " * 11 + b"o"
    assert not remote.exists("shared.docx")


@pytest.mark.parametrize("shrink_to", [1000, 16 * MiB + 100])
def test_a_file_that_shrinks_while_read_is_reported_not_truncated(source, remote, shrink_to):
    remote.put("growing.log", os.urandom(20 * MiB))

    with pytest.raises(errors.SourceChanged) as info:
        with source.open_read("growing.log") as reader:
            reader.read(1)
            remote.truncate("growing.log", shrink_to)
            while reader.read(MiB):
                pass
    assert info.value.path == "growing.log"


def test_connection_lost_mid_read_is_transient_and_the_next_read_works(source, remote):
    data = os.urandom(20 * MiB)
    remote.put("big.bin", data)

    with pytest.raises(errors.Transient) as info:
        with source.open_read("big.bin") as reader:
            reader.read(1)
            remote.drop_connections()
            while reader.read(MiB):
                pass
    assert info.value.path == "big.bin"
    assert sha(read_all(source, "big.bin")) == sha(data)


def test_concurrent_reads_on_one_source_do_not_mix_up(source, remote):
    files = {f"c{i}.bin": os.urandom(6 * MiB + i) for i in range(4)}
    for rel, data in files.items():
        remote.put(rel, data)
    results: dict[str, str] = {}

    def read(rel: str) -> None:
        results[rel] = sha(read_all(source, rel, step=MiB))

    threads = [threading.Thread(target=read, args=(rel,)) for rel in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
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


# --- owners, credentials, reconnects ------------------------------------------------------

def test_owners_are_sids_that_differ_per_user(source, remote):
    remote.put("alice.txt", b"a", owner="alice")
    remote.put("bob.txt", b"b", owner="bob")
    remote.put("alice2.txt", b"a", owner="alice")
    source.write("service.txt", io.BytesIO(b"s"), 1)
    many = [f"m/{i}.txt" for i in range(40)]
    for rel in many:
        remote.put(rel, b"m", owner="bob")

    owners = source.owners(["alice.txt", "bob.txt", "alice2.txt", "service.txt", "missing.txt",
                            *many])

    assert all(SID.match(owners[p]) for p in ("alice.txt", "bob.txt", "service.txt"))
    assert owners["alice.txt"] == owners["alice2.txt"] != owners["bob.txt"]
    assert owners["service.txt"] not in (owners["alice.txt"], owners["bob.txt"])
    assert owners["missing.txt"] is None
    assert {owners[p] for p in many} == {owners["bob.txt"]}
    assert source.owners([]) == {}


def test_wrong_password_raises_auth_failed(source_factory, remote):
    remote.put("x.txt", b"x")
    bad = source_factory(password="not-the-password")

    with pytest.raises(errors.AuthFailed):
        bad.stat("x.txt")
    listing = bad.list()
    assert not listing.complete and listing.entries == {}
    assert [(f.path, f.cause) for f in listing.failures] == [("", "auth_failed")]
    assert bad.owners(["x.txt"]) == {"x.txt": None}


def test_same_source_works_again_after_a_server_restart(source, remote):
    remote.put("r/x.txt", b"before")
    assert source.stat("r/x.txt").size == 6

    remote.restart()

    assert source.stat("r/x.txt").size == 6
    assert read_all(source, "r/x.txt") == b"before"
    assert set(source.list().entries) == {"r/x.txt"}
    remote.restart()
    assert source.list().complete  # a listing, too, starts on a fresh connection
    assert source.owners(["r/x.txt"])["r/x.txt"] is not None

