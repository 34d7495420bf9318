"""What every `Source` must do (like rclone's fstests). Each backend joins `source_factory`.

A factory returns (source, root): `root` is a local folder that *is* the source's tree, so the
tests can change the tree behind the backend's back, as users of the file server do.
"""
from __future__ import annotations

import hashlib
import io
import os
import secrets

import pytest

from shared import errors
from shared.sources.smb import SmbSource


@pytest.fixture(params=["smb"])
def source_factory(request, samba):
    made = []

    def make(password: str | None = None):
        folder = "conf-" + secrets.token_hex(4)
        root = samba.mkdir(folder)
        source = SmbSource(samba.host, samba.share, folder, port=samba.port,
                           username=samba.username, password=password or samba.password)
        made.append(source)
        return source, root

    yield make
    for source in made:
        source.close()


def put(root, rel: str, data: bytes):
    """A file the service account may also change (it needs write access for write-back)."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o777)
    path.write_bytes(data)
    os.chmod(path, 0o666)
    return path


def test_list_nested_unicode_and_empty(source_factory):
    source, root = source_factory()
    put(root, "a/b/c.txt", b"abc")
    put(root, "Ünïcødé/日本語.txt", "日本".encode())
    put(root, "empty", b"")
    listing = source.list()
    assert listing.complete and listing.failures == []
    assert {p: e.size for p, e in listing.entries.items()} == {
        "a/b/c.txt": 3, "Ünïcødé/日本語.txt": 6, "empty": 0}


def test_modify_changes_mtime_and_rename_keeps_file_id(source_factory):
    source, root = source_factory()
    path = put(root, "f.txt", b"one")
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before = source.stat("f.txt")
    assert before.mtime_ns == 1_600_000_000_000_000_000
    path.write_bytes(b"two!")
    after = source.stat("f.txt")
    assert after.mtime_ns != before.mtime_ns and after.size == 4
    os.rename(path, root / "g.txt")
    assert source.list().entries["g.txt"].file_id == before.file_id


def test_read_returns_exact_bytes_and_does_not_lock_users_out(source_factory):
    source, root = source_factory()
    data = os.urandom(20 * 1024 * 1024 + 12345)
    put(root, "big.bin", data)
    other, _ = source_factory()
    digest = hashlib.sha256()
    with source.open_read("big.bin") as reader:
        assert reader.entry.size == len(data)
        digest.update(reader.read(1000))
        # Another client writes the file while we hold it open: it must not be refused.
        other.write("big.bin-sibling", io.BytesIO(b"x"), 1)
        with open(root / "big.bin", "r+b") as f:  # the file server's own user
            f.seek(0)
        while chunk := reader.read(3 * 1024 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_read_while_another_smb_client_writes(source_factory, samba):
    source, root = source_factory()
    put(root, "shared.txt", b"original")
    writer = SmbSource(samba.host, samba.share, root.name, port=samba.port,
                       username=samba.username, password=samba.password)
    try:
        with source.open_read("shared.txt") as reader:
            writer.write("shared.txt", io.BytesIO(b"replaced"), 8)  # not a sharing violation
            assert len(reader.read()) == 8
    finally:
        writer.close()


def test_write_creates_parents_then_reads_back(source_factory):
    source, root = source_factory()
    entry = source.write("new/deep/file.txt", io.BytesIO(b"hello smb"), 9)
    assert entry.size == 9 and (root / "new/deep/file.txt").read_bytes() == b"hello smb"
    with source.open_read("new/deep/file.txt") as reader:
        assert reader.read() == b"hello smb"


def test_delete_and_missing_paths_raise_not_found(source_factory):
    source, root = source_factory()
    put(root, "gone.txt", b"x")
    source.delete("gone.txt")
    assert not (root / "gone.txt").exists()
    for call in (lambda: source.delete("gone.txt"), lambda: source.stat("gone.txt"),
                 lambda: source.open_read("gone.txt").__enter__()):
        with pytest.raises(errors.NotFound):
            call()


def test_unreadable_folder_is_a_failure_and_the_rest_is_listed(source_factory, samba):
    source, root = source_factory()
    put(root, "ok.txt", b"ok")
    samba.make_unreadable_dir(f"{root.name}/private")
    listing = source.list()
    assert list(listing.entries) == ["ok.txt"] and listing.complete
    assert [(f.path, f.cause) for f in listing.failures] == [("private", "permission_denied")]


def test_owners_are_sids_that_tell_users_apart(source_factory, samba):
    source, root = source_factory()
    put(root, "alice.txt", b"a")
    put(root, "bob.txt", b"b")
    samba.chown(f"{root.name}/alice.txt", "alice")
    samba.chown(f"{root.name}/bob.txt", "bob")
    owners = source.owners(["alice.txt", "bob.txt", "missing.txt"])
    assert owners["alice.txt"].startswith("S-1-") and owners["bob.txt"].startswith("S-1-")
    assert owners["alice.txt"] != owners["bob.txt"] and owners["missing.txt"] is None


def test_wrong_password_is_an_auth_failure(source_factory):
    source, _ = source_factory(password="not-the-password")
    with pytest.raises(errors.AuthFailed):
        source.stat("anything")
    failure = source.list().failures[0]
    assert (failure.path, failure.cause) == ("", "auth_failed")


def test_source_recovers_after_server_restart(source_factory, samba):
    source, root = source_factory()
    put(root, "x.txt", b"x")
    assert "x.txt" in source.list().entries
    samba.restart()
    assert "x.txt" in source.list().entries


@pytest.mark.parametrize("actual", [b"", b"exactly", b"grown since it was listed" * 100, b"x"])
def test_size_hint_never_changes_what_is_read(source_factory, actual):
    """The hint is the listed size; the file may have changed since. The bytes and the
    version returned are always the file's current ones."""
    source, root = source_factory()
    put(root, "f", actual)
    with source.open_read("f", size_hint=7) as reader:
        data = reader.read()
        assert reader.entry.size == len(actual)
    assert data == actual
