"""A connector's throttles in a real Redis (and a Redis Cluster): the bandwidth bucket hands out
reservations in order and paces readers sharing it to the connector's rate; the transfer slots
never let more than the limit in, a killed holder's slot comes back when it expires, renewal
keeps it; and the transfer worker's `Throttle` over them: one file at a time across two
"workers", a job that cannot get a slot goes back to its queue, a closed window parks the work
and keeps the run's lease."""
from __future__ import annotations

import asyncio
import io
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from services.transfer.throttle import OutsideWindow, SlotsBusy, Throttle
from shared.config.connector_model import Connector

KB = 1024


def connector(**throttles: Any) -> Connector:
    return Connector(id="c1", name="c1", target_share="share-one", schedule="1h", **throttles)


def throttle(state) -> Throttle:
    return Throttle(SimpleNamespace(state=state))  # type: ignore[arg-type]


async def test_the_bucket_reserves_in_order_at_its_rate(state):
    rate, chunk = 1024 * KB, 128 * KB
    step = chunk / rate  # an eighth of a second
    for attempt in range(5):
        cid = f"c{attempt}"
        # Taking nothing leaves the new bucket full; the script is loaded on its node meanwhile.
        assert await state.throttles.take_bytes(cid, 0, rate, chunk) == 0
        started = time.monotonic()
        waits = sorted(await asyncio.gather(*(state.throttles.take_bytes(cid, chunk, rate, chunk)
                                              for _ in range(8))))
        took = time.monotonic() - started
        debt = await state.throttles.debt(cid)
        if took < 0.02:  # the eight takes at one moment: the bounds below are tight
            break
    # The first goes at once (the bucket starts full: one chunk); each next an eighth later,
    # less what the bucket refilled between the first take and its own (at most `took`: a
    # loaded machine may stall between them, and a stall of an eighth frees a chunk).
    for i, wait in enumerate(waits):
        assert i * step - took - 0.005 <= wait <= i * step + 0.005, (waits, took)
    assert 7 * chunk - took * rate - 1 <= debt <= 7 * chunk, (debt, took)
    assert await state.throttles.take_bytes("other", chunk, rate, chunk) == 0  # per connector


async def test_an_idle_bucket_saves_up_no_more_than_its_burst(state):
    rate, chunk = 1024 * KB, 64 * KB
    for attempt in range(5):
        cid = f"c{attempt}"
        assert await state.throttles.take_bytes(cid, chunk, rate, chunk) == 0
        await asyncio.sleep(0.5)  # half a second of rate, but the bucket holds one chunk
        started = time.monotonic()
        assert await state.throttles.take_bytes(cid, chunk, rate, chunk) == 0
        wait = await state.throttles.take_bytes(cid, chunk, rate, chunk)
        took = time.monotonic() - started  # the bucket refills while the two takes run
        if took < 0.01:
            break
    assert chunk / rate - took - 0.005 <= wait <= chunk / rate + 0.005, (wait, took)


async def test_readers_sharing_a_connector_share_its_rate(state):
    """Two uploads at once (threads, as in the worker) of 256 KiB each under 256k: ~2 s."""
    t = throttle(state)
    pace = t.pace(connector(bandwidth_limit="256k"))
    assert pace is not None
    loop = asyncio.get_running_loop()

    def upload() -> int:
        reader, got = pace.reader(io.BytesIO(b"x" * 256 * KB)), 0
        while chunk := reader.read(5 * 1024 * KB):  # S3 asks for a whole part
            assert len(chunk) <= 32 * KB  # an eighth of a second's worth at a time
            got += len(chunk)
        return got

    started = time.monotonic()
    sizes = await asyncio.gather(loop.run_in_executor(None, upload),
                                 loop.run_in_executor(None, upload))
    took = time.monotonic() - started
    assert sizes == [256 * KB, 256 * KB]
    assert 1.75 <= took < 3.0, took  # 512 KiB at 256 KiB/s, the first chunk free
    assert t.pace(connector()) is None  # no limit: nothing in the way


async def test_slots_never_exceed_the_limit(state):
    assert await state.throttles.acquire_slot("c1", "a", 2, 30)
    assert await state.throttles.acquire_slot("c1", "b", 2, 30)
    assert not await state.throttles.acquire_slot("c1", "c", 2, 30)
    assert await state.throttles.acquire_slot("c1", "a", 2, 30)  # a holder asking again
    assert await state.throttles.acquire_slot("c2", "c", 2, 30)  # another connector's own
    await state.throttles.release_slot("c1", "a")
    assert await state.throttles.acquire_slot("c1", "c", 2, 30)
    assert await state.throttles.slot_holders("c1") == 2


async def test_a_dead_holders_slot_comes_back_and_renewal_keeps_one(state):
    assert await state.throttles.acquire_slot("c1", "dead", 1, 0.3)
    assert await state.throttles.acquire_slot("c1", "alive", 2, 0.3)
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await state.throttles.renew_slot("c1", "alive", 0.3)
    # "dead" stopped renewing: its slot is free again, "alive" still holds its own.
    assert await state.throttles.acquire_slot("c1", "new", 2, 30)
    assert not await state.throttles.acquire_slot("c1", "more", 2, 30)
    assert not await state.throttles.renew_slot("c1", "dead", 30)
    await asyncio.sleep(0.35)  # "alive" stops too
    assert await state.throttles.acquire_slot("c1", "more", 2, 30)


async def test_one_file_at_a_time_across_two_workers(state):
    c = connector(max_parallel_transfers=1)
    workers = [throttle(state), throttle(state)]
    in_flight, most = 0, 0

    async def move(t: Throttle) -> None:
        nonlocal in_flight, most
        async with t.file(c, "r1", patience_s=None):
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.03)
            in_flight -= 1

    await asyncio.gather(*(move(workers[i % 2]) for i in range(10)))
    assert most == 1
    assert await state.throttles.slot_holders(c.id) == 0


async def test_a_job_without_a_slot_goes_back_to_its_queue(state):
    c = connector(max_parallel_transfers=1)
    busy, other = throttle(state), throttle(state)
    async with busy.file(c, "r1"):
        started = time.monotonic()
        with pytest.raises(SlotsBusy):
            async with other.file(c, "r1", patience_s=0.3):
                pass
        assert 0.3 <= time.monotonic() - started < 1.5
    async with other.file(c, "r1", patience_s=0.3):  # free again
        assert await state.throttles.slot_holders(c.id) == 1


async def test_a_closed_window_parks_the_work_and_keeps_the_run(state):
    now = datetime.now(UTC)
    later = f"{(now + timedelta(hours=2)):%H}:00-{(now + timedelta(hours=3)):%H}:00"
    c = connector(sync_windows={"timezone": "UTC", "windows": [later]})
    assert await state.acquire_lease(c.id, "r1", 60)
    with pytest.raises(OutsideWindow):
        async with throttle(state).file(c, "r1"):
            pytest.fail("a file started outside its window")
    assert await state.schedule.parked() == [c.id]
    assert await state.r.pttl(state.key("lease", c.id)) == -1  # kept until the window opens
    assert await state.lease_holder(c.id) == "r1"
    opened = connector(sync_windows={"timezone": "UTC", "windows": ["00:00-24:00"]})
    async with throttle(state).file(opened, "r1"):
        pass
