"""A worker's places for long work (shared/messaging/claims.py `LongWork`): a message delivered
while every place is taken takes the next one that frees, at once, instead of sleeping out the
pause and going back to the queue. Real RabbitMQ and Redis.

Why it matters: an acked claim frees its prefetch slot, so the broker keeps delivering; before,
each extra message slept FULL_WAIT_S and was put back, and a freed place stayed idle until one
woke: a scanner with 200 small shares queued did one scan per place every ~3 s (PERFORMANCE.md,
200 x 20). A worker that stays full still puts a message back after the pause (tests/e2e/
test_long_jobs.py: `test_a_worker_holds_no_more_long_jobs_than_its_room`)."""
from __future__ import annotations

import asyncio

from shared.contracts import TransferJob
from shared.messaging.broker import Broker
from shared.messaging.claims import Claims, LongWork
from shared.store.claim_records import ClaimRecords
from tests.fixtures.stack import AMQP_URL, delete_broker_objects

JOBS = 8
ROOM = 2


async def test_work_waiting_for_a_place_takes_the_next_one_freed(state):
    broker = await Broker(AMQP_URL, state.ns).connect()
    put_back: list[str] = []
    requeue = broker.requeue_fresh

    async def counted_requeue(message) -> None:
        put_back.append(message.message_id or "")
        await requeue(message)

    broker.requeue_fresh = counted_requeue  # type: ignore[method-assign]
    done: list[str] = []
    running = 0
    most = 0

    async def handler(job, _raw) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.3)  # a short scan
        running -= 1
        done.append(job.job_id)

    try:
        queue = broker.queues[f"transfer.main.{broker.lanes.shard('c1', 'main')}"]
        claims = Claims(ClaimRecords(state.r, state.ns), 30)
        await broker.consume(queue, handler, prefetch=ROOM,
                             long_work=LongWork(claims, lambda _: True, ROOM))
        for i in range(JOBS):
            await broker.publish_work("transfer", TransferJob(
                connector_id="c1", run_id="r", job_id=f"j{i}", kind="created", path=f"{i}"),
                "main", "c1")
        for _ in range(200):
            if len(done) == JOBS:
                break
            await asyncio.sleep(0.05)
    finally:
        await broker.close()
        await delete_broker_objects(state.ns)

    assert sorted(done) == sorted(f"j{i}" for i in range(JOBS))  # each once
    assert most <= ROOM  # never more at once than its places
    assert put_back == []  # none slept out the pause and went back to the queue
