"""A paused connector's parked work is never stranded by the race between a worker parking a
message and the scheduler's unpark on resume (shared/app/held_work.py). Real RabbitMQ and Redis.

The race (seen in CI as a resumed run that ended `failed`, a third of its files never sent): the
scheduler empties and deletes the parked queue; a worker, whose held flag is a moment stale,
notes the connector as parked; the scheduler forgets the connector and looks once more (nothing
there yet); the worker's message then lands in a new parked queue that nobody would look at.
"""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared.app import held_work
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.config.secrets import SecretBox
from shared.config.settings import Settings
from shared.contracts import TransferJob
from shared.messaging.broker import Broker
from shared.messaging.redelivery import Claimed, Park
from tests.fixtures.stack import AMQP_URL, delete_broker_objects


@pytest.fixture
async def rt(state):
    key = SecretStr(Fernet.generate_key().decode())
    settings = Settings(s3_access_key=SecretStr("k"), s3_secret_key=SecretStr("s"),
                        secret_key=key, namespace=state.ns)
    broker = await Broker(AMQP_URL, state.ns).connect()
    yield Runtime(settings, state, broker, SecretBox(key))
    await broker.close()
    await delete_broker_objects(state.ns)


def a_transfer(c: Connector, rt: Runtime) -> Claimed:
    job = TransferJob(connector_id=c.id, run_id="r", job_id="j1", kind="created", path="a.txt")
    key = rt.broker.lanes.routing_key("transfer", c.id, "main")
    return Claimed(job.model_dump_json(), "TransferJob", rt.broker.name("transfer"), key, {}, 0)


async def lane_depth(rt: Runtime, c: Connector) -> int:
    lane = f"transfer.main.{rt.broker.lanes.shard(c.id, 'main')}"
    return (await rt.broker.depths([lane]))[lane]


async def test_work_parked_while_the_scheduler_forgets_the_connector_is_still_unparked(
        rt, monkeypatch):
    c = Connector(name="parked", target_share="parked", schedule="1h")
    await rt.state.save_connector(c)
    with pytest.raises(Park) as first:
        await held_work.park(rt, c.id)
    await rt.broker.park(a_transfer(c, rt), first.value)  # parked while paused; now resumed

    real_unpark, calls, late = rt.broker.unpark, [], {}

    async def unpark_racing_a_worker(cid: str) -> tuple[int, bool]:
        result = await real_unpark(cid)
        calls.append(result)
        if len(calls) == 1:  # queue emptied and deleted: a stale worker notes the connector
            with pytest.raises(Park) as late_park:
                await held_work.park(rt, c.id)
            late["park"] = late_park.value
        elif len(calls) == 2:  # the scheduler forgot it and looked again: now it lands
            await real_park(a_transfer(c, rt), late["park"])
        return result

    real_park = rt.broker.park
    monkeypatch.setattr(rt.broker, "unpark", unpark_racing_a_worker)
    assert await held_work.unpark_resumed(rt) == 1
    assert calls == [(1, True), (0, True)]
    assert await lane_depth(rt, c) == 1

    # The next tick finds the late message and puts it back in its lane too.
    monkeypatch.setattr(rt.broker, "unpark", real_unpark)
    assert await held_work.unpark_resumed(rt) == 1
    assert await lane_depth(rt, c) == 2
    assert await rt.state.schedule.parked() == []


async def test_work_parked_while_the_scheduler_deletes_the_emptied_queue_is_not_dropped(
        rt, monkeypatch):
    """The worker declares the parked queue; the scheduler's unpark finds it empty and deletes
    it; the worker's publish then has no queue and comes back unroutable. Before, that error
    escaped the consumer, the message stayed unacked in the worker and the resumed run ended
    `failed` when its lease ran out (seen in CI: 358 of 1,200 files unsent)."""
    c = Connector(name="parked", target_share="parked", schedule="1h")
    await rt.state.save_connector(c)
    channel = rt.broker.control_channel()
    real_declare, deleted = channel.declare_queue, []

    async def declared_then_deleted(name, **kwargs):
        queue = await real_declare(name, **kwargs)
        if not deleted:  # the scheduler, between the worker's declare and its publish
            deleted.append(await rt.broker.unpark(c.id))
        return queue

    monkeypatch.setattr(channel, "declare_queue", declared_then_deleted)
    with pytest.raises(Park) as parked:
        await held_work.park(rt, c.id)
    await rt.broker.park(a_transfer(c, rt), parked.value)
    assert deleted == [(0, True)]  # the queue was emptied and deleted under the worker
    monkeypatch.setattr(channel, "declare_queue", real_declare)
    assert (await rt.broker.depths([f"parked.{c.id}"]))[f"parked.{c.id}"] == 1  # not dropped
    assert await held_work.unpark_resumed(rt) == 1
    assert await lane_depth(rt, c) == 1
