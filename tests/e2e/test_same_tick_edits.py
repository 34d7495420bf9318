"""No missed edits on SMB: a file rewritten with other bytes of the same size within the
timestamp tick of its last write (FAT keeps mtimes to 2 s; here its mtime put back exactly,
os.utime) is an edit. Against Samba no version shows it (Samba answers ChangeTime = the mtime:
its get_change_timespec returns st_mtime), so a version read within a tick of its write is
"racily clean" (git's rule, `shared.sync.model.racily_clean`): the next run compares its
bytes, sends them if they differ (one-way into the bucket, two-way too, nothing echoing back)
and sends nothing if not. A file written long before its read is never read again for it.

Such an edit can only go unseen if the read fell within the file's tick, so the test makes
that certain: the files' mtimes are pinned 30 s ahead (a file server whose clock runs ahead,
or a coarse tick), whatever the machine's load between writing and the first run's read.
A push back over such a file checks its bytes before writing (the last test): a ScaiDrive edit
never overwrites an unseen one at the share. Real Samba, every service."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import bucket_tree, disk_tree, new_connector
from tests.e2e.test_two_way import put
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
MB = 1024 * 1024
FILES = {"small.txt": b"quarterly figures: 1,000 units\n" * 30,  # sent in a batch
         "big/ledger.bin": b"L" * (5 * MB)}  # sent on its own (>= 4 MiB)
OLD = {"archive/2019.txt": b"closed books\n" * 10}  # written an hour before it is read


def rewrite_in_the_same_tick(path: Path) -> bytes:
    """Other bytes, the same size, the same file, the mtime set back to the nanosecond."""
    before = os.stat(path)
    data = path.read_bytes()
    edited = bytes(b ^ 0x20 for b in data[:64]) + data[64:]
    with open(path, "r+b") as f:
        f.write(edited)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
        (before.st_size, before.st_mtime_ns, before.st_ino)
    assert edited != data
    return edited


def counts(view: dict) -> dict:
    p = view["status"]["progress"]
    return {k: p[k] for k in ("files_transferred", "files_deleted", "files_errored",
                              "files_conflicted") if p[k]}


def pin_mtime(path: Path, seconds_from_now: float) -> None:
    when = time.time_ns() + int(seconds_from_now * 1e9)
    os.utime(path, ns=(when, when))


@pytest.mark.parametrize("mode", ["one_way", "two_way"])
def test_a_same_size_edit_in_the_same_tick_is_sent(stack, samba, s3, mode):
    api, name = stack.api(), f"tick-{mode.replace('_', '-')}"
    root = samba.path(name)
    for rel, data in (FILES | OLD).items():
        samba.write_file(f"{name}/{rel}", data)
        pin_mtime(root / rel, -3600 if rel in OLD else 30)
    cid = new_connector(api, samba, name, name, sync_mode=mode)["id"]
    view = wait_run(api, cid)
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text

    edited = {rel: rewrite_in_the_same_tick(root / rel) for rel in FILES}

    view = sync_and_wait(api, cid)
    assert counts(view) == {"files_transferred": 2}, api.get(f"/connectors/{cid}/failures").text
    for rel, data in edited.items():
        obj = s3.client().get_object(name, rel)
        try:
            assert obj.read() == data, rel  # the user's edit reached ScaiDrive
        finally:
            obj.close()
            obj.release_conn()
    assert bucket_tree(s3.client(), name) == disk_tree(root)
    view = sync_and_wait(api, cid)
    assert counts(view) == {}  # nothing more, nothing echoed back
    # Still within their tick (30 s ahead), the two were compared again and found unchanged;
    # the old file was not read at all.
    assert view["status"]["progress"]["files_skipped"] == len(FILES)


def test_a_push_over_a_same_tick_edit_is_a_conflict_not_an_overwrite(stack, samba, s3):
    """Two-way: the share's copy rewritten in the tick (unseen by its version) while ScaiDrive's
    changed too. Pushing ScaiDrive's version would destroy the share's edit: the push checks
    the bytes of a racily clean source first, finds the edit, and it is a conflict; the share
    keeps its edit."""
    api, name = stack.api(), "tick-push"
    root = samba.path(name)
    samba.write_file(f"{name}/plan.txt", b"plan: version one\n" * 20)
    pin_mtime(root / "plan.txt", 30)
    cid = new_connector(api, samba, name, name, sync_mode="two_way",
                        admin_emails=["ops@example.com"])["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"

    edited = rewrite_in_the_same_tick(root / "plan.txt")
    put(s3, name, "plan.txt", b"ScaiDrive's own edit of the plan")

    view = sync_and_wait(api, cid)
    assert counts(view) == {"files_conflicted": 1}, api.get(f"/connectors/{cid}/failures").text
    assert (root / "plan.txt").read_bytes() == edited  # the share's edit is still there
