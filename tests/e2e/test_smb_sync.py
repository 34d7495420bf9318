"""SMB -> bucket through the API and every service as its own process, against real servers."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from types import SimpleNamespace

import pytest

from shared.store.connection import connect
from shared.store.store import Store
from shared.store.upload_records import OpenUpload
from shared.sync.model import SourceEntry
from tests.e2e.helpers import (
    bucket_tree,
    disk_tree,
    new_connector,
    open_uploads,
    upload_records,
    wait_parts_sent,
    wait_upload_started,
    write,
    write_random,
)
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.stack import REDIS_URL, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
MB = 1024 * 1024


def test_initial_then_incremental_sync(stack, samba, s3):
    root = samba.share_dir / "main"
    write(root, "a/b/c/deep.txt", b"deep")
    write(root, "Ünïcødé/日本語.txt", "こんにちは".encode())
    write(root, "empty.bin", b"")
    write_random(root, "big.bin", 50 * MB)
    for i in range(1000):
        write(root, f"small/f{i:04d}.txt", f"file {i}\n".encode() * (i % 7 + 1))
    api = stack.api()
    cid = new_connector(api, samba, "main", "main")["id"]

    view = wait_run(api, cid)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text
    assert progress["files_transferred"] == 1004 and progress["files_errored"] == 0
    assert progress["bytes_transferred"] == sum(p.stat().st_size for p in root.rglob("*")
                                                if p.is_file())
    assert view["status"]["last_success_at"] and view["status"]["last_duration_s"] > 0
    assert bucket_tree(s3.client(), "main") == disk_tree(root)
    # Both transfer worker processes took jobs of this run (competing consumers).
    logs = [(stack.logdir / f"{w}.log").read_text() for w in stack.workers()]
    done = [text.count('"job done"') + text.count('"batch done"') for text in logs]
    assert len(done) == 2 and all(done), done
    meta = s3.client().stat_object("main", "Ünïcødé/日本語.txt").metadata
    assert meta["x-amz-meta-scaidrive-owner"] == "system"
    assert meta["x-amz-meta-source-owner"].startswith("S-1-")

    # Changes at the source: only they move on the next run.
    write(root, "new.txt", b"brand new")
    write(root, "a/b/c/deep.txt", b"deeper and longer")
    (root / "small/f0001.txt").unlink()
    os.rename(root / "Ünïcødé/日本語.txt", root / "Ünïcødé/renamed.txt")
    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert (progress["files_transferred"], progress["files_deleted"],
            progress["files_moved"], progress["files_errored"]) == (2, 1, 1, 0), progress
    assert progress["bytes_transferred"] == len(b"brand new") + len(b"deeper and longer")
    assert bucket_tree(s3.client(), "main") == disk_tree(root)

    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert progress["files_transferred"] == 0 and progress["files_scanned"] == 1004
    usage = api.get("/shares/main").json()["usage_bytes"]
    assert usage == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_denied_folder_is_recorded_and_the_rest_syncs(stack, samba, s3):
    root = samba.share_dir / "denied"
    write(root, "ok/1.txt", b"one")
    write(root, "locked/kept.txt", b"was readable once")
    api = stack.api()
    cid = new_connector(api, samba, "denied", "denied")["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"

    samba.make_unreadable_dir("denied/locked")
    write(root, "ok/2.txt", b"two")
    view = sync_and_wait(api, cid)
    assert view["status"]["run"]["outcome"] == "partial"
    failures = api.get(f"/connectors/{cid}/failures").json()
    denied = [f for f in failures if f["cause"] == "permission_denied"]
    assert denied and denied[0]["path"] == "locked" and denied[0]["stage"] == "list"
    objects = bucket_tree(s3.client(), "denied")
    assert "ok/2.txt" in objects
    # What we could not list this time is not deleted on the strength of that listing.
    assert "locked/kept.txt" in objects


@pytest.mark.parametrize("change", ["unchanged", "edited", "shrunk", "deleted"])
def test_killed_worker_mid_upload_is_taken_over_where_it_stopped(stack, samba, s3, change):
    """The next worker goes on with the parts the killed one sent: it reads (and sends) only
    the rest of the file, and the object is whole. A file edited since (same size) is sent
    whole: the parts of its old bytes are not spliced into it. A file now small enough for one
    PUT is sent so, and the upload left is aborted all the same; so it is when the file is gone
    from the share (its parts stayed in the bucket for good, and its record in Redis)."""
    bucket = "kill" if change == "unchanged" else f"kill-{change}"
    root = samba.share_dir / bucket
    size = 50 * MB
    write_random(root, "big.bin", size)
    for label in stack.workers()[1:]:
        stack.kill(label, signal.SIGTERM)  # one worker, so we know who holds the job
    victim = stack.workers()[0]
    api = stack.api()
    proxy = TcpProxy(samba.port)  # counts what the file server sends
    try:
        via_proxy = SimpleNamespace(port=proxy.port, share=samba.share,
                                    username=samba.username, password=samba.password)
        cid = new_connector(api, via_proxy, bucket, bucket,
                            bandwidth_limit=10 * MB)["id"]  # ~5 s: time to kill it midway
        sent = wait_parts_sent(s3.client(), bucket, "big.bin", 3)
        stack.kill(victim)
        if change == "edited":
            with open(root / "big.bin", "r+b") as f:  # in place, as an application saves
                f.write(os.urandom(MB))
        elif change == "shrunk":
            write_random(root, "big.bin", MB)
        elif change == "deleted":
            (root / "big.bin").unlink()
        read_before = proxy.bytes_down
        stack.spawn("transfer")
        stack.spawn("transfer")
        view = wait_run(api, cid, timeout=180)
        if change == "deleted":  # one per-file failure: gone since the scan
            assert view["status"]["run"]["outcome"] == "partial", view["status"]
            assert open_uploads(s3.client(), bucket) == []
            assert upload_records(stack.ns, cid) == {}
            return
        assert view["status"]["run"]["outcome"] == "success", view["status"]
        assert bucket_tree(s3.client(), bucket) == disk_tree(root)
        assert open_uploads(s3.client(), bucket) == []
        read_after = proxy.bytes_down - read_before
        if change == "edited":
            assert read_after >= size  # read again whole
        if change != "unchanged":
            return
        assert any("going on with an upload a worker left" in path.read_text(errors="replace")
                   for path in stack.logdir.glob("transfer-*.log"))  # what the operator sees
        part = 5 * MB  # the stack's part size
        # What was not sent yet, plus SMB's own headers (~0.2%) and the dead worker's last
        # bytes on their way when it was killed; a new upload would read all 50 MiB again.
        assert read_after < size - sent * part + 2 * MB, (read_after, sent)
    finally:
        proxy.close()


@pytest.mark.parametrize("mode", ["one_way", "two_way"])
def test_an_upload_left_for_a_file_gone_since_is_aborted_by_the_next_run(stack, samba, s3, mode):
    """What a worker killed mid-upload leaves when its job then gave up (dead-lettered) and the
    file was deleted before the next run: an open upload with a part in the bucket and its
    record. No job comes for that file again; the next run's listing finds it gone and aborts
    the upload (its parts stayed in the bucket for good, its record in Redis)."""
    bucket = f"left-gone-{mode.replace('_', '-')}"
    root = samba.share_dir / bucket
    samba.write_file(f"{bucket}/kept.txt", b"kept")  # a folder the account may write to
    api = stack.api()
    cid = new_connector(api, samba, bucket, bucket, sync_mode=mode)["id"]
    wait_run(api, cid)
    client = s3.client()
    leave_upload(stack, client, cid, bucket, "gone.bin")

    assert sync_and_wait(api, cid)["status"]["run"]["outcome"] == "success"
    assert open_uploads(client, bucket) == []
    assert upload_records(stack.ns, cid) == {}
    assert bucket_tree(client, bucket) == disk_tree(root)


@pytest.mark.parametrize("mode", ["one_way", "two_way"])
def test_an_upload_left_for_a_file_synced_since_is_aborted_by_the_next_run(
        stack, samba, s3, mode):
    """The same leftover for a file the next listing finds as its index holds it (its job gave
    up after another attempt had synced it): no change is published for it, so no job comes to
    take the upload either. The next run aborts it (it stayed open for good, its record too),
    and the synced object is left as it was."""
    bucket = f"left-synced-{mode.replace('_', '-')}"
    root = samba.share_dir / bucket
    big = samba.write_file(f"{bucket}/big.bin", os.urandom(MB))
    os.utime(big, (time.time() - 3600,) * 2)  # not written within a tick of its read: no recheck
    api = stack.api()
    cid = new_connector(api, samba, bucket, bucket, sync_mode=mode)["id"]
    wait_run(api, cid)
    client = s3.client()
    leave_upload(stack, client, cid, bucket, "big.bin")

    view = sync_and_wait(api, cid)
    assert view["status"]["progress"]["files_transferred"] == 0
    assert open_uploads(client, bucket) == []
    assert upload_records(stack.ns, cid) == {}
    assert bucket_tree(client, bucket) == disk_tree(root)


def leave_upload(stack, client, cid: str, bucket: str, path: str) -> None:
    """What a worker killed mid-upload of `path` leaves: an open upload with one part in the
    bucket, and its record."""
    upload_id = client._create_multipart_upload(bucket, path, {})
    client._upload_part(bucket, path, os.urandom(5 * MB), None, upload_id, 1)

    async def record() -> None:
        store = Store(connect(REDIS_URL), stack.ns)
        try:
            await store.uploads.put(cid, path, OpenUpload(
                path, upload_id, 5 * MB, SourceEntry(path, 50 * MB, 10**18, "7"), {}))
        finally:
            await store.close()
    asyncio.run(record())
    assert upload_records(stack.ns, cid) and open_uploads(client, bucket)


def test_sigterm_lets_a_worker_finish_the_transfer_in_hand(stack, samba, s3):
    """Scaling down: a worker told to stop finishes and acks its job instead of dropping it."""
    root = samba.share_dir / "drain"
    write_random(root, "big.bin", 50 * MB)
    for label in stack.workers()[1:]:
        stack.kill(label, signal.SIGTERM)
    worker = stack.procs[stack.workers()[0]]
    api = stack.api()
    cid = new_connector(api, samba, "drain", "drain")["id"]
    wait_upload_started(s3.client(), "drain")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    view = wait_run(api, cid, timeout=30)  # no other worker exists: the stopping one finished it
    assert view["status"]["run"]["outcome"] == "success"
    assert bucket_tree(s3.client(), "drain") == disk_tree(root)
    stack.spawn("transfer")
    stack.spawn("transfer")


def test_pause_stops_taking_jobs_and_resume_finishes(stack, samba, s3):
    root = samba.share_dir / "pause"
    for i in range(800):
        write(root, f"f{i:03d}.txt", os.urandom(2048))
    api = stack.api()
    cid = new_connector(api, samba, "pause", "pause")["id"]
    while api.get(f"/connectors/{cid}").json()["status"]["progress"]["files_transferred"] == 0:
        time.sleep(0.05)
    assert api.post(f"/connectors/{cid}/pause").json()["status"]["state"] == "paused"
    time.sleep(2)  # jobs already in a worker's hands finish
    settled = api.get(f"/connectors/{cid}").json()["status"]["progress"]["files_transferred"]
    time.sleep(3)
    view = api.get(f"/connectors/{cid}").json()
    assert view["status"]["state"] == "paused"
    assert view["status"]["progress"]["files_transferred"] == settled < 800
    assert api.post(f"/connectors/{cid}/sync").status_code == 409  # paused: no new run either

    api.post(f"/connectors/{cid}/resume")
    view = wait_run(api, cid, timeout=180)
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text
    assert view["status"]["progress"]["files_transferred"] == 800
    assert bucket_tree(s3.client(), "pause") == disk_tree(root)
    shutil.rmtree(root)


def test_one_trace_per_run_across_services(stack, samba):
    """W3C trace context rides the messages: every service's log lines of a run share its trace."""
    write(samba.share_dir / "traced", "a.txt", b"a")
    write(samba.share_dir / "traced", "b/c.txt", b"c")
    api = stack.api()
    cid = new_connector(api, samba, "traced", "traced")["id"]
    run_id = wait_run(api, cid)["status"]["run"]["run_id"]
    lines = [json.loads(line) for line in stack.logs().splitlines()
             if line.startswith("{") and f'"run_id": "{run_id}"' in line]
    services = {line["service"] for line in lines}
    assert {"scheduler", "scanner", "identity", "transfer"} <= services, services
    assert len({line.get("trace_id") for line in lines}) == 1, lines
