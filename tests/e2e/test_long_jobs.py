"""Transfers longer than RabbitMQ's consumer timeout, on a private broker node whose timeout is
2 s (checked every second) and an S3 link slowed to make a 20 MiB upload take several seconds
(1.5 MB/s a connection: four 5 MiB parts, three in flight, ~3.5 s each, ~7 s in all; a 12 MiB
file's three parts took one 3.5 s round, and once the workers' CPU per file fell a whole run
took 3.8 s, too close to the timeout to prove it. A slower link is no way out: moto's server
drops a request whose body takes ~5 s).
Without claims (shared/messaging/claims.py) the broker closes the worker's channel mid-upload and
redelivers the job, over and over: the file would be sent many times and end dead-lettered."""
from __future__ import annotations

import asyncio
import secrets
import time
from types import SimpleNamespace

import aio_pika
import pytest
import redis.asyncio as aioredis

from shared.contracts import TransferJob
from shared.messaging.broker import Broker
from shared.messaging.claims import FULL_WAIT_S, Claims, LongWork
from shared.store.claim_records import ClaimRecords
from tests.e2e.helpers import (
    bucket_tree,
    disk_tree,
    new_connector,
    open_uploads,
    wait_upload_started,
    write,
    write_random,
)
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.rabbit_node import RabbitNode
from tests.fixtures.stack import REDIS_URL, Stack, wait_run

pytestmark = pytest.mark.e2e
MB = 1024 * 1024
BIG = 20 * MB


@pytest.fixture(scope="module")
def node():
    n = RabbitNode().start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def slow_s3(s3):
    proxy = TcpProxy(s3.port, rate=1.5 * MB)
    yield proxy
    proxy.close()


def long_stack(s3, slow_s3, node, tmp_path_factory, graph, smtp, **env) -> Stack:
    via_proxy = SimpleNamespace(endpoint=f"http://127.0.0.1:{slow_s3.port}",
                                access_key=s3.access_key, secret_key=s3.secret_key)
    return Stack(via_proxy, tmp_path_factory.mktemp("long"), graph, smtp,
                 SCAIDRIVE_AMQP_URL=node.url, SCAIDRIVE_LONG_JOB_MB="8", **env)


async def held_past_timeout(url: str) -> bool:
    """Does this node close a channel whose delivery stays unacked past its timeout?"""
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue("", exclusive=True)
        await ch.default_exchange.publish(aio_pika.Message(b"x"), q.name)
        async def never_ack(_message) -> None:
            pass

        await q.consume(never_ack)
        for _ in range(100):
            if ch.is_closed:
                return True
            await asyncio.sleep(0.1)
        return False


def test_the_broker_cuts_off_a_consumer_that_holds_a_message_too_long(node):
    """The premise of the next tests: a plain unacked delivery is cut off within seconds."""
    assert asyncio.run(held_past_timeout(node.url))


def test_a_transfer_longer_than_the_consumer_timeout_is_done_once(
        s3, slow_s3, node, samba, tmp_path_factory, graph, smtp):
    root = samba.share_dir / "long"
    write_random(root, "big.bin", BIG)
    for i in range(20):
        write(root, f"small/{i:02d}.txt", b"small %d" % i)
    st = long_stack(s3, slow_s3, node, tmp_path_factory, graph, smtp).start(transfer_workers=2)
    try:
        api = st.api()
        sent_before = slow_s3.bytes_up
        started = time.monotonic()
        cid = new_connector(api, samba, "long", "long")["id"]
        view = wait_run(api, cid, timeout=180)
        took = time.monotonic() - started
        assert view["status"]["run"]["outcome"] == "success", (view["status"], st.logs()[-3000:])
        assert bucket_tree(s3.client(), "long") == disk_tree(root)
        assert open_uploads(s3.client(), "long") == []
        assert took > 4, "the upload was not slower than the consumer timeout: nothing proven"
        sent = slow_s3.bytes_up - sent_before
        assert sent < 1.3 * BIG, f"{sent} bytes sent for a {BIG}-byte file: it was redone"
        logs = st.logs()
        assert "PRECONDITION_FAILED" not in logs and "dead-lettering" not in logs
    finally:
        st.stop()


def test_a_worker_dying_with_a_claimed_transfer_hands_it_over(
        s3, slow_s3, node, samba, tmp_path_factory, graph, smtp):
    """Acked early, the job lives on in its claim: the scheduler republishes it once the dead
    worker stops renewing it, and another worker finishes it."""
    root = samba.share_dir / "long-kill"
    write_random(root, "big.bin", BIG)
    st = long_stack(s3, slow_s3, node, tmp_path_factory, graph, smtp,
                    SCAIDRIVE_CLAIM_TTL_S="3").start(transfer_workers=1)
    try:
        api = st.api()
        cid = new_connector(api, samba, "long-kill", "long-kill")["id"]
        wait_upload_started(s3.client(), "long-kill")
        st.kill(st.workers()[0])
        st.spawn("transfer")
        view = wait_run(api, cid, timeout=180)
        assert view["status"]["run"]["outcome"] == "success", (view["status"], st.logs()[-3000:])
        assert bucket_tree(s3.client(), "long-kill") == disk_tree(root)
        assert open_uploads(s3.client(), "long-kill") == []
        assert "worker lost while holding TransferJob" in st.logs()
    finally:
        st.stop()


def test_a_worker_holds_no_more_long_jobs_than_its_room(node):
    """One worker with room for one long job: the others wait in the queue (put back after a
    pause, for a worker with room), none is lost, and every claim is gone at the end. Those
    waiting for room outstay this node's 2 s timeout, so it closes the channel: the claimed job
    is not cancelled with it (acked and claimed, it no longer depends on the channel)."""
    ns = "cap" + secrets.token_hex(3)

    async def scenario():
        # Each 2 s channel close returns the waiting messages with one more delivery counted:
        # with a limit of 3, a loaded machine's extra cycle dead-letters one (this node's
        # timeout is 900x shorter than RabbitMQ's default; the wait for room is 3 s).
        broker = await Broker(node.url, ns, delivery_limit=50).connect()
        redis = aioredis.from_url(REDIS_URL, decode_responses=True)
        release, running, done = asyncio.Event(), [], []

        async def handler(job, _raw):
            running.append(job.job_id)
            await release.wait()
            running.remove(job.job_id)
            done.append(job.job_id)

        try:
            queue = broker.queues[f"transfer.main.{broker.lanes.shard('c1', 'main')}"]
            claims = Claims(ClaimRecords(redis, ns), 30)
            await broker.consume(queue, handler, prefetch=4,
                                 long_work=LongWork(claims, lambda _: True, 1))
            for i in range(3):
                await broker.publish_work("transfer", TransferJob(
                    connector_id="c1", run_id="r", job_id=f"j{i}", kind="created", path=f"{i}"),
                    "main", "c1")
            await asyncio.sleep(FULL_WAIT_S * 2)
            held = (len(running), await redis.hlen(f"{ns}:claims"))
            release.set()
            for _ in range(100):
                if set(done) == {"j0", "j1", "j2"}:
                    break
                await asyncio.sleep(0.2)
            return held, set(done), await redis.exists(f"{ns}:claims")
        finally:
            await broker.close()
            await redis.aclose()

    held, done, claims_left = asyncio.run(scenario())
    assert held == (1, 1)
    assert done == {"j0", "j1", "j2"} and not claims_left  # (at least once: a close may repeat one)
