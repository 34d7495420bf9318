"""SMB connectors on a DFS namespace (what-users-hit lesson 9: "Kerberos and DFS"; lesson 2: a
DFS path that listed nothing while the job reported success).

The share is a DFS root (Samba's `msdfs root`) whose links lead to folders of `data`, on this
server by its address or by the name `localhost` (a connection of its own, as another file
server would be). What a user notices: the files behind the links sync with their owners; a
transfer worker that never listed the share (no referral known yet) reads them too; a link that
leads nowhere is a failure at the link, named, and the rest of the share still syncs; moving a
file from one link to another moves it; a link's folder is never removed or renamed (that would
remove or rename the folder it leads to). Every other call through a link is the whole
conformance suite's `smb-dfs` remote.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import uuid

import pytest
from smbclient._pool import ClientConfig

from shared import errors
from tests.conformance.remotes import SID, MiB, in_threads, read_all, sha


@pytest.fixture
def namespace(samba):
    """A DFS root with links `one` (to `data/<tag>-one`) and `two` (to `data/<tag>-two` on
    `localhost`), and the SmbSource of a connector on the whole root."""
    from shared.sources.smb.source import SmbSource

    tag = f"dfs-{uuid.uuid4().hex[:8]}"
    samba.dfs_link(f"{tag}-l1", f"{tag}-one")
    samba.dfs_link(f"{tag}-l2", f"{tag}-two", host="localhost")
    for name in ("one", "two"):
        samba.mkdir(f"{tag}-{name}")
    source = SmbSource(samba.host, samba.dfs_share, "", port=samba.port,
                       username=samba.username, password=samba.password)
    yield tag, source
    source.close()
    for link in samba.dfs_dir.iterdir():
        if link.name.startswith(tag):
            link.unlink()
    for name in ("one", "two"):
        shutil.rmtree(samba.path(f"{tag}-{name}"), ignore_errors=True)
    _forget_referrals()


def _forget_referrals() -> None:
    """As a process that has followed no link yet (a new transfer worker) sees the namespace."""
    ClientConfig()._referral_cache.clear()


def test_files_behind_links_are_listed_read_and_owned(samba, namespace):
    tag, source = namespace
    samba.write_file(f"{tag}-one/report.txt", b"quarterly", owner="alice")
    big = os.urandom(3 * MiB + 5)  # streamed: several READs in flight
    samba.write_file(f"{tag}-two/sub/scan.bin", big, owner="bob")
    listing = source.list()
    small, large = f"{tag}-l1/report.txt", f"{tag}-l2/sub/scan.bin"
    assert {small, large} <= set(listing.entries)
    assert not [f for f in listing.failures if f.path.startswith(tag)]
    _forget_referrals()
    for _ in ("the link unknown", "the link known"):  # its referral is learned on the way
        with source.open_read(small, listing.entries[small].size) as f:  # one compound
            assert f.read() == b"quarterly"
    _forget_referrals()
    with source.open_read(large, listing.entries[large].size) as f:
        assert b"".join(iter(lambda: f.read(MiB), b"")) == big
    _forget_referrals()
    owners = source.owners([small, large])
    assert all(SID.match(owners[p] or "") for p in (small, large)), owners
    assert owners[small] != owners[large]  # alice's and bob's, not the connector's default


def test_a_link_that_leads_nowhere_is_a_failure_at_the_link_and_the_walk_goes_on(
        samba, namespace):
    tag, source = namespace
    samba.write_file(f"{tag}-one/kept.txt", b"still synced")
    samba.dfs_link(f"{tag}-gone", "", share="no-such-share")
    samba.dfs_link(f"{tag}-down", f"{tag}-one", host="127.0.0.2")  # nobody listens there
    listing = source.list()
    assert listing.complete  # the links' failures break nothing off
    assert f"{tag}-l1/kept.txt" in listing.entries
    failed = {f.path: f for f in listing.failures if f.path.startswith(tag)}
    assert set(failed) == {f"{tag}-gone", f"{tag}-down"}
    assert {f.cause for f in failed.values()} == {"link_unreachable"}
    assert "\\\\127.0.0.1\\no-such-share" in failed[f"{tag}-gone"].message
    assert "127.0.0.2" in failed[f"{tag}-down"].message
    assert "DFS link" in errors.plain("link_unreachable")


def test_a_move_from_one_link_to_another_moves_the_file(samba, namespace):
    tag, source = namespace
    samba.write_file(f"{tag}-one/notes/plan.txt", b"the plan", owner="alice")
    old, new = f"{tag}-l1/notes/plan.txt", f"{tag}-l2/plan.txt"
    owner = source.owners([old])[old]
    moved = source.move(old, new, source.stat(old))
    assert (moved.path, moved.size) == (new, 8)
    assert source.owners([new])[new] == owner  # alice's still, not the service account's
    assert samba.path(f"{tag}-two/plan.txt").read_bytes() == b"the plan"
    assert not samba.path(f"{tag}-one/notes").exists()  # the folder the move emptied goes
    assert samba.path(f"{tag}-one").is_dir()  # the folder the link leads to stays


def test_a_link_is_neither_removed_nor_renamed(samba, namespace):
    tag, source = namespace
    _forget_referrals()
    assert source.remove_folder_if_empty(f"{tag}-l1") is False  # empty, yet a link
    assert samba.path(f"{tag}-one").is_dir()
    with pytest.raises(errors.SyncError, match="DFS link"):
        source.respell_folder(f"{tag}-l2", f"{tag}-L2")
    assert samba.path(f"{tag}-two").is_dir()
    source.make_folder(f"{tag}-l1/inner")
    assert source.remove_folder_if_empty(f"{tag}-l1/inner") is True  # a folder behind one: yes
    assert not samba.path(f"{tag}-one/inner").exists()


def test_readers_meeting_a_link_at_once_each_read_their_file_on_one_connection(samba, namespace):
    """A transfer worker's readers (one source, threads) all open files behind a link whose
    referral the process does not know: a new worker, or the referral's time to live over
    (smbclient then meets the link again). The link's server gets one connection and one
    session, and every reader reads its own file. Before, each reader could log on to that
    server at once (one connection's single credit spent twice: "requires 1 credits but only 0
    are available"), and a reader whose open was sent on again to the link's server received
    the rest of its first compound on that server's connection, taking another reader's
    request off it: that connection's reader thread died and the other readers hung."""
    tag, source = namespace
    files = {f"{tag}-l2/f{i}.bin": os.urandom(3 * MiB + i) for i in range(6)}
    for rel, data in files.items():
        samba.write_file(rel.replace(f"{tag}-l2", f"{tag}-two"), data)
    read: dict[str, str] = {}

    def reader(rel: str) -> None:
        read[rel] = sha(read_all(source, rel, step=MiB))

    for _ in range(4):  # each round as a new worker: no connection, no referral known
        source.close()
        _forget_referrals()
        read.clear()
        in_threads(reader, list(files))
        assert read == {rel: sha(data) for rel, data in files.items()}
        assert len([k for k in source._cache if k.startswith("localhost:")]) == 1


def test_readers_behind_a_link_to_a_hung_server_wait_for_one_logon_together(samba):
    """A link's server that takes connections and never answers them (hung): a transfer
    worker's readers meeting it at once wait for one logon together, and each file fails,
    instead of logging on one after another, each waiting out the connection timeout (after
    which the last reader would have waited four times as long as the first)."""
    from shared.sources.smb.source import SmbSource

    tag = f"hung-{uuid.uuid4().hex[:8]}"
    hung = socket.create_server(("127.0.0.4", samba.port))
    taken: list[socket.socket] = []

    def take() -> None:
        with contextlib.suppress(OSError):
            while True:
                taken.append(hung.accept()[0])  # held open, never answered

    threading.Thread(target=take, daemon=True).start()
    samba.dfs_link(f"{tag}-l", "", host="127.0.0.4")
    source = SmbSource(samba.host, samba.dfs_share, "", port=samba.port,
                       username=samba.username, password=samba.password,
                       connection_timeout=3)
    failed: dict[str, errors.SyncError] = {}

    def reader(rel: str) -> None:
        try:
            read_all(source, rel)
        except errors.SyncError as exc:
            failed[rel] = exc

    try:
        files = [f"{tag}-l/f{i}.bin" for i in range(4)]
        in_threads(reader, files)
        assert set(failed) == set(files)
        assert {e.cause for e in failed.values()} == {"transient"}  # tried again later
        assert {rel: e.path for rel, e in failed.items()} == {rel: rel for rel in files}
        assert all("file server 127.0.0.4 did not answer the logon" in str(e)
                   for e in failed.values()), failed
        assert len(taken) <= 2, len(taken)  # one logon; and one more when each tries again
    finally:
        source.close()
        hung.shutdown(socket.SHUT_RDWR)  # wakes the accept: closed alone, it kept listening
        hung.close()
        for conn in taken:
            conn.close()
        (samba.dfs_dir / f"{tag}-l").unlink()
        _forget_referrals()
