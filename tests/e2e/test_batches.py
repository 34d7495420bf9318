"""Small files travel in batches (one message, one Redis script per flush) and keep per-file
truth, against the real servers: a worker SIGKILLed mid-batch loses nothing and counts nothing
twice, a poisoned file is one failure while the rest of its batch syncs, a batch delivered again
does nothing again, pause stops a batch between files (a job thread's group of them too), and
one batch mixes creates, modifies, moves and deletes. S3 is reached through a slowed link where
a fault must land mid-batch."""
from __future__ import annotations

import asyncio
import os
import time

import aio_pika
import pytest

from services.scanner.publish import job_id
from shared.contracts import ChangeKind, FileVersion, Owner, Transfer, TransferBatch
from shared.store.store import Store
from shared.sync.model import IndexRecord
from shared.sync.rules import Action
from tests.e2e.helpers import (
    bucket_tree,
    disk_tree,
    new_connector,
    random_tree,
    run_of,
    wait_done,
    write,
)
from tests.fixtures.proxy import slowed_s3
from tests.fixtures.stack import AMQP_URL, LANES, REDIS_URL, Stack, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
KB = 1024
MB = 1024 * KB


@pytest.fixture
def slow_s3(s3):
    """S3 behind a link of 3 MB/s towards the server: 600 files of 32 KiB take ~6 s."""
    with slowed_s3(s3, 3 * MB) as slow:
        yield slow


@pytest.fixture
def slow_stack(slow_s3, graph, smtp, tmp_path_factory):
    """One transfer worker, its S3 behind the slowed link."""
    st = Stack(slow_s3, tmp_path_factory.mktemp("batch-slow"), graph, smtp).start(
        transfer_workers=1)
    yield st
    st.stop()


def start(st: Stack, samba, name: str, files: int):
    """A tree of `files` files of 32 KiB and a connector syncing it: (root, api, cid)."""
    root = random_tree(samba, name, files, size=32 * KB, dirs=12)
    api = st.api()
    return root, api, new_connector(api, samba, name, name)["id"]


def batch_lines(st: Stack) -> list[str]:
    return [line for line in st.logs().splitlines() if '"batch done"' in line]


def test_a_worker_killed_mid_batch_loses_nothing_and_counts_nothing_twice(slow_stack, s3,
                                                                            samba):
    st = slow_stack
    root, api, cid = start(st, samba, "batch-kill", 600)
    before = wait_done(api, cid, 150)["jobs_done"]  # the first batch is part done
    st.kill(st.workers()[0])
    assert before < 600
    st.spawn("transfer")  # the unacked batches are redelivered to it
    view = wait_run(api, cid, timeout=240)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "success", st.logs()[-3000:]
    assert progress["files_transferred"] == 600  # each file counted once
    assert progress["files_errored"] == 0 and progress["files_skipped"] == 0
    assert progress["bytes_transferred"] == 600 * 32 * KB
    assert bucket_tree(s3.client(), "batch-kill") == disk_tree(root)
    assert api.get("/shares/batch-kill").json()["usage_bytes"] == 600 * 32 * KB


def test_a_poisoned_file_is_one_failure_and_the_rest_of_its_batch_syncs(stack, samba, s3):
    root = random_tree(samba, "batch-poison", 40, size=4 * KB, dirs=12)
    denied = samba.write_file("batch-poison/d03/secret.bin", b"alice only", owner="alice")
    os.chmod(denied, 0o600)
    api = stack.api()
    cid = new_connector(api, samba, "batch-poison", "batch-poison")["id"]
    view = wait_run(api, cid)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "partial"
    assert (progress["files_transferred"], progress["files_errored"]) == (40, 1)
    failures = api.get(f"/connectors/{cid}/failures").json()
    assert [(f["path"], f["cause"]) for f in failures] == [
        ("d03/secret.bin", "permission_denied")]
    expected = {k: v for k, v in disk_tree(root).items() if k != "d03/secret.bin"}
    assert bucket_tree(s3.client(), "batch-poison") == expected


async def _publish(ns: str, cid: str, batch: TransferBatch) -> None:
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        exchange = await ch.get_exchange(f"{ns}.transfer")
        await exchange.publish(aio_pika.Message(
            batch.model_dump_json().encode(), type="TransferBatch",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=LANES.routing_key("transfer", cid, "main"))


async def _index(ns: str, cid: str) -> dict[str, IndexRecord]:
    store = Store.connect(REDIS_URL, ns)
    try:
        return await store.index(cid)
    finally:
        await store.close()


def test_a_batch_delivered_again_does_nothing_again(stack, samba, s3):
    root = random_tree(samba, "batch-again", 30, size=4 * KB, dirs=12)
    api = stack.api()
    cid = new_connector(api, samba, "batch-again", "batch-again")["id"]
    view = wait_run(api, cid)
    assert view["status"]["progress"]["files_transferred"] == 30
    client = s3.client()
    stored = {o.object_name: o.last_modified for o in
              client.list_objects("batch-again", recursive=True)}
    # The same jobs (their ids are the scan's), at the versions the index holds, under the
    # finished run's id: a batch redelivered after its run closed.
    run = view["status"]["run"]
    index = asyncio.run(_index(stack.ns, cid))
    batch = TransferBatch(connector_id=cid, run_id=run["run_id"], transfers=[
        Transfer(job_id=job_id(Action(ChangeKind.CREATED, p)), kind=ChangeKind.CREATED, path=p,
                 version=FileVersion(size=r.size, mtime_ns=r.mtime_ns, file_id=r.file_id),
                 owner=Owner(user_id="system")) for p, r in sorted(index.items())])
    assert len(batch.transfers) == 30
    seen = len(batch_lines(stack))
    asyncio.run(_publish(stack.ns, cid, batch))
    deadline = time.monotonic() + 30
    while len(batch_lines(stack)) == seen:
        assert time.monotonic() < deadline, "the batch was not handled"
        time.sleep(0.1)
    progress = api.get(f"/connectors/{cid}").json()["status"]["progress"]
    assert (progress["files_transferred"], progress["files_skipped"]) == (30, 0)  # nothing
    after = {o.object_name: o.last_modified for o in
             client.list_objects("batch-again", recursive=True)}
    assert after == stored  # wrote nothing
    assert bucket_tree(client, "batch-again") == disk_tree(root)


def test_pause_stops_a_batch_between_files(slow_stack, s3, samba):
    root, api, cid = start(slow_stack, samba, "batch-pause", 600)
    pause_then_resume(slow_stack, api, cid, after=100, files=600)
    assert bucket_tree(s3.client(), "batch-pause") == disk_tree(root)


def pause_then_resume(st: Stack, api, cid: str, after: int, files: int) -> None:
    """Pause once `after` files are done: within 3 s nothing moves (files in flight finish),
    then resumed, the run ends with each of the `files` sent once."""
    wait_done(api, cid, after)
    assert api.post(f"/connectors/{cid}/pause").status_code in (200, 202)
    time.sleep(3)  # the worker notices within a second; files in flight finish
    held = run_of(api, cid)["jobs_done"]
    time.sleep(2)
    assert run_of(api, cid)["jobs_done"] == held < files  # nothing moves while paused
    assert api.post(f"/connectors/{cid}/resume").status_code in (200, 202)
    view = wait_run(api, cid, timeout=240)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "success", st.logs()[-3000:]
    assert progress["files_transferred"] == files and progress["files_skipped"] == 0


def test_pause_stops_a_batch_whose_every_group_is_in_a_thread(slow_stack, s3, samba):
    """28 files of 2 MiB (~0.7 s each through the link): one batch of 4 groups
    (batches.FILES_PER_HANDOFF), all in the job threads at once, none left waiting for a
    thread: each thread sees the pause between its files, and the batch is parked with what
    they had not begun, not acked without it."""
    root = random_tree(samba, "batch-pause-groups", 28, size=2 * MB, dirs=4)
    api = slow_stack.api()
    cid = new_connector(api, samba, "batch-pause-groups", "batch-pause-groups")["id"]
    pause_then_resume(slow_stack, api, cid, after=2, files=28)
    assert bucket_tree(s3.client(), "batch-pause-groups") == disk_tree(root)


def test_one_batch_mixes_creates_modifies_moves_and_deletes(stack, samba, s3):
    root = random_tree(samba, "batch-mixed", 40, size=4 * KB, dirs=12)
    api = stack.api()
    cid = new_connector(api, samba, "batch-mixed", "batch-mixed")["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for p in files[0:5]:
        p.write_bytes(os.urandom(5 * KB))  # modified
    for p in files[5:10]:
        p.rename(p.with_name("renamed-" + p.name))  # moved: same file id
    for p in files[10:15]:
        p.unlink()  # deleted
    for i in range(5):
        write(root, f"new/n{i}.bin", os.urandom(3 * KB))  # created
    view = sync_and_wait(api, cid)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "success"
    assert (progress["files_transferred"], progress["files_moved"],
            progress["files_deleted"]) == (10, 5, 5)
    assert bucket_tree(s3.client(), "batch-mixed") == disk_tree(root)
    run_id = view["status"]["run"]["run_id"]
    mine = [line for line in batch_lines(stack) if run_id in line]
    assert len(mine) == 1 and '"files": 20' in mine[0], mine  # all twenty in one batch
