"""What every `Source` backend must do (in the spirit of rclone's fstests).

Each test gets a fresh, empty folder on the server as the source's base path. The `remote`
fixture changes the server behind the source's back, the way the file server's users do.
A new backend adds a `Remote` class and a param to `backend`.
"""
from __future__ import annotations

import io
import os

import pytest

from shared import errors
from tests.conformance.remotes import needs, read_all


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


def test_walk_gives_the_listing_in_parts_without_repeats(source, remote):
    files = {"a.txt": b"a", "one/b.txt": b"bb", "one/two/c.txt": b"ccc", "three/d.txt": b""}
    for rel, data in files.items():
        remote.put(rel, data)

    parts = list(source.walk())

    seen = [path for part in parts for path in part.entries]
    assert sorted(seen) == sorted(files)  # every file once: a scan counts each part's files
    assert all(part.complete and not part.failures for part in parts)
    assert {p: e for part in parts for p, e in part.entries.items()} == source.list().entries
    if remote.walks_by_folder:  # the scanner then holds one folder's width, not the tree
        assert all(len({p.rpartition("/")[0] for p in part.entries}) <= 1 for part in parts)


def test_lists_a_folder_bigger_than_one_directory_reply(source, remote):
    names = [f"{i:05d}-" + "n" * 150 + ".txt" for i in range(3000)]  # > 1 MiB: several replies
    for name in names:
        remote.put(f"big/{name}", b"x")

    listing = source.list()

    assert listing.complete
    assert set(listing.entries) == {f"big/{n}" for n in names}


def test_mtime_is_the_servers_and_changes_after_a_modify_of_the_same_size(source, remote):
    remote.put("doc.txt", b"version one")
    step = remote.mtime_resolution_ns  # SMB: whole microseconds; SharePoint: seconds
    when = 1_600_000_000_123_456_000 // step * step  # ns since 1970
    remote.set_mtime("doc.txt", when)
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
    needs(remote, "has_folder_permissions", "has no folders the service cannot list")
    remote.put("open/a.txt", b"a")
    remote.put("b.txt", b"b")
    remote.make_unreadable("open/locked")

    listing = source.list()

    assert listing.complete
    assert set(listing.entries) == {"open/a.txt", "b.txt"}
    assert [(f.path, f.cause) for f in listing.failures] == [("open/locked", "permission_denied")]


def test_linked_folders_are_not_followed_into_loops(source, remote):
    needs(remote, "has_symlinks", "has no symlinks")
    remote.put("real/x.txt", b"x")
    remote.symlink("real/loop", ".")  # real/loop/loop/... if followed
    remote.symlink("alias", "real")

    listing = source.list()

    assert listing.complete
    listed = set(listing.entries)
    assert len(listed) == 1 and listed <= {"real/x.txt", "alias/x.txt"}  # listed once
    assert {f.cause for f in listing.failures} == {"unsupported"}
    assert len(listing.failures) == 2  # the loop and whichever of real/alias came second


def test_a_connection_lost_mid_walk_lists_the_folder_again_on_a_new_one(source, remote):
    """A dropped connection, or a session the server ends (a Kerberos ticket's end:
    NETWORK_SESSION_EXPIRED), costs the folder being read a second reading, not the run: its
    subfolders are not taken for loops, none is listed twice, nothing is missing."""
    needs(remote, "can_drop_connections", "cannot drop its clients' connections")
    remote.put("a.txt", b"a")
    for i in range(3000):  # more than one directory reply
        remote.put(f"big/{i:05d}-" + "n" * 150, b"")
    for i in range(10):  # most of them met before the cut
        remote.put(f"big/sub{i}/x.txt", b"x")

    with remote.connection_cut_while_listing(source, after=2500):
        parts = list(source.walk())

    assert all(part.complete and not part.failures for part in parts)
    listed = [path for part in parts for path in part.entries]
    assert len(listed) == len(set(listed)) == 3011


def test_a_connection_lost_twice_in_one_folder_gives_an_incomplete_listing(source, remote):
    needs(remote, "can_drop_connections", "cannot drop its clients' connections")
    remote.put("a.txt", b"a")
    for i in range(3000):
        remote.put(f"big/{i:05d}-" + "n" * 150, b"")

    with remote.connection_cut_while_listing(source, after=100, times=2):
        listing = source.list()

    assert not listing.complete  # the walk broke off: its silence proves nothing
    assert [(f.path, f.cause) for f in listing.failures] == [("big", "transient")]
    assert len([p for p in listing.entries if p.startswith("big/")]) < 3000
    again = source.list()  # and the next run connects again
    assert again.complete and len(again.entries) == 3001


def test_listing_a_missing_base_fails_the_root(source_factory, remote):
    remote.remove_base()  # SMB: the base folder; SharePoint: the document library

    listing = source_factory().list()

    assert not listing.complete and listing.entries == {}
    assert [(f.path, f.cause) for f in listing.failures] == [("", "not_found")]


# --- reading ----------------------------------------------------------------------------


def test_owners_are_principals_that_differ_per_user(source, remote):
    """SIDs for SMB, emails for SharePoint."""
    remote.put("alice.txt", b"a", owner="alice")
    remote.put("bob.txt", b"b", owner="bob")
    remote.put("alice2.txt", b"a", owner="alice")
    source.write("service.txt", io.BytesIO(b"s"), 1)
    many = [f"m/{i}.txt" for i in range(40)]
    for rel in many:
        remote.put(rel, b"m", owner="bob")

    owners = source.owners(["alice.txt", "bob.txt", "alice2.txt", "service.txt", "missing.txt",
                            *many])

    assert all(remote.owner_pattern.match(owners[p]) for p in ("alice.txt", "bob.txt",
                                                               "service.txt"))
    assert owners["alice.txt"] == owners["alice2.txt"] != owners["bob.txt"]
    assert owners["service.txt"] not in (owners["alice.txt"], owners["bob.txt"])
    assert owners["missing.txt"] is None
    assert {owners[p] for p in many} == {owners["bob.txt"]}
    assert source.owners([]) == {}


def test_owners_lost_with_the_connection_are_asked_again_never_left_unknown(source, remote):
    """Unknown owners go to the connector's default owner: a connection dropped (or a session
    expired) while they are read must not hand the rest of the files to it."""
    needs(remote, "can_drop_connections", "cannot drop its clients' connections")
    files = {f"o/{i:03d}.txt": ("alice", "bob")[i % 2] for i in range(200)}
    for rel, owner in files.items():
        remote.put(rel, b"o", owner=owner)
    first = source.owners(["o/000.txt", "o/001.txt"])
    sid = {"alice": first["o/000.txt"], "bob": first["o/001.txt"]}

    with remote.connection_cut_while_asking_owners(after=60):
        owners = source.owners(list(files))

    assert owners == {rel: sid[owner] for rel, owner in files.items()}
    with remote.connection_cut_while_asking_owners(after=60, times=2), \
            pytest.raises(errors.Transient):
        source.owners(list(files))  # lost again: said, never answered with default owners


def test_wrong_credentials_raise_auth_failed(source_factory, remote):
    remote.put("x.txt", b"x")
    bad = source_factory(**remote.wrong_credentials)

    with pytest.raises(errors.AuthFailed):
        bad.stat("x.txt")
    listing = bad.list()
    assert not listing.complete and listing.entries == {}
    assert [(f.path, f.cause) for f in listing.failures] == [("", "auth_failed")]
    with pytest.raises(errors.AuthFailed):  # said: never the default owner for want of a logon
        bad.owners(["x.txt"])


def test_same_source_works_again_after_a_server_restart(source, remote):
    needs(remote, "can_restart", "cannot restart its server")
    remote.put("r/x.txt", b"before")
    assert source.stat("r/x.txt").size == 6

    remote.restart()

    assert source.stat("r/x.txt").size == 6
    assert read_all(source, "r/x.txt") == b"before"
    assert set(source.list().entries) == {"r/x.txt"}
    remote.restart()
    assert source.list().complete  # a listing, too, starts on a fresh connection
    assert source.owners(["r/x.txt"])["r/x.txt"] is not None
