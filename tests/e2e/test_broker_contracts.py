"""What other systems see on the broker: platform events, and dead letters that do not loop."""
from __future__ import annotations

import asyncio
import json

import aio_pika
import pytest

from tests.e2e.helpers import new_connector, write
from tests.fixtures.stack import AMQP_URL, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e


async def _platform_queue(ns: str):
    """Bind a queue to the events exchange the way the ScaiDrive platform would."""
    conn = await aio_pika.connect(AMQP_URL)
    ch = await conn.channel()
    q = await ch.declare_queue(exclusive=True)
    await q.bind(f"{ns}.events", routing_key="sync.#")
    return conn, q


async def _drain(q, timeout: float = 10) -> list:  # noqa: ASYNC109 - returns what came by then
    out = []
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        msg = await q.get(fail=False, no_ack=True)
        if msg is None:
            if out:
                return out
            await asyncio.sleep(0.2)
            continue
        out.append((msg.routing_key, msg.type, json.loads(msg.body)))
    return out


def test_sync_completed_reaches_the_platform_with_its_counts(stack, samba):
    write(samba.share_dir / "events", "one.txt", b"1")
    write(samba.share_dir / "events", "two.txt", b"22")
    api = stack.api()

    async def scenario():
        conn, q = await _platform_queue(stack.ns)
        async with conn:
            cid = new_connector(api, samba, "events", "events")["id"]
            run_id = (await asyncio.to_thread(wait_run, api, cid))["status"]["run"]["run_id"]
            return cid, run_id, await _drain(q)

    cid, run_id, events = asyncio.run(scenario())
    ours = [e for e in events if e[2]["connector_id"] == cid]
    assert len(ours) == 1
    key, kind, body = ours[0]
    assert (key, kind, body["event"], body["run_id"]) == (
        "sync.completed", "SyncCompleted", "sync.completed", run_id)
    assert body["outcome"] == "success" and body["schema_version"] == 1
    assert body["counts"]["files_transferred"] == 2 and body["counts"]["bytes_transferred"] == 3


def test_a_crashing_message_is_dead_lettered_and_the_run_ends(stack, samba, s3):
    """The bucket vanishes behind our back: the scan crashes on every delivery. It must end in
    the dead-letter queue with its error after the delivery limit, and the run must end failed."""
    write(samba.share_dir / "crash", "a.txt", b"a")
    api = stack.api()
    cid = new_connector(api, samba, "crash", "crash")["id"]
    wait_run(api, cid)
    client = s3.client()
    client.remove_object("crash", "a.txt")
    client.remove_bucket("crash")

    view = sync_and_wait(api, cid, timeout=120)
    assert view["status"]["state"] == "error"
    assert "NoSuchBucket" in view["status"]["last_error"]
    from tests.e2e.test_api import _peek_dead
    dead = [m for m in asyncio.run(_peek_dead(stack.ns)) if cid in m["body"]]
    assert dead and dead[0]["headers"]["x-error-class"] == "S3Error"
    # Bounded: one delivery per allowed attempt, with back-off between them (not a hot loop).
    retries = [line for line in (stack.logdir / "scanner.log").read_text().splitlines()
               if "retrying" in line and "NoSuchBucket" in line]
    assert len(retries) == int(stack.env["SCAIDRIVE_DELIVERY_LIMIT"]) - 1
