"""The scheduler's records in a real Redis (and a Redis Cluster): a connector is due when its
status says, leaves the due set while held and comes back on resume; the sweep finds those
without a due time; held flags of many connectors in one read; the parked set."""
from __future__ import annotations

import time

from shared.config.connector_model import Connector


async def test_due_times_follow_the_status(state):
    now = time.time()
    await state.set_status("a", next_due=now - 5)
    await state.set_status("b", next_due=now + 60)
    assert await state.schedule.due(now) == ["a"]
    assert (await state.status("a"))["next_due"] == str(now - 5)  # the API still shows it
    await state.set_status("a", next_due=now + 30)
    assert await state.schedule.due(now) == []
    assert await state.schedule.due(now + 61) == ["a", "b"]  # soonest first


async def test_a_held_connector_leaves_the_due_set_until_woken(state):
    now = time.time()
    await state.set_status("a", paused=1, next_due=now - 100)
    await state.schedule.unschedule("a")
    assert await state.schedule.due(now) == []
    assert await state.schedule.missing(["a", "b"]) == ["a", "b"]
    await state.set_status("a", paused=0)
    await state.schedule.wake("a", now)
    assert await state.schedule.due(now) == ["a"]  # overdue: at once
    assert await state.schedule.missing(["a", "b"]) == ["b"]


async def test_held_flags_of_many_connectors_in_one_read(state):
    await state.set_status("a", paused=1)
    await state.set_status("b", auth_failed=1)
    await state.set_status("c", paused=0)
    assert await state.schedule.held_many(["a", "b", "c", "d"]) == {
        "a": True, "b": True, "c": False, "d": False}


async def test_the_parked_set_and_a_deleted_connector(state):
    c = Connector(name="n", target_share="s", schedule="1h")
    await state.save_connector(c)
    await state.schedule.mark_parked(c.id)
    await state.schedule.mark_parked("other")
    await state.set_status(c.id, next_due=time.time())
    assert await state.schedule.parked() == sorted([c.id, "other"])
    await state.delete_connector(c.id)
    assert await state.schedule.parked() == ["other"]
    assert await state.schedule.due(time.time() + 1) == []
    assert await state.connector_pages.deleted_of([c.id]) == [c.id]
    await state.schedule.unmark_parked("other")
    assert await state.schedule.parked() == []
