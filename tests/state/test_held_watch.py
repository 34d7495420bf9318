"""A transfer worker's held flags (shared/app/held_work.py `HeldWatch`) against the real Redis:
a pause reaches a batch in progress within a refresh period or two, whether the flag comes
from the worker's polling or from a batch's flush; a flag a flush has just read is not polled
again (a worker busy with small files costs Redis nothing more for pauses), and a worker with no
batch in progress polls nothing (before, it polled every connector it had worked for during a
minute after: 400 Redis commands a second after 200 connectors' first runs)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from shared.app.held_work import REFRESH_S, HeldWatch


def watch_of(state) -> tuple[HeldWatch, list[list[str]]]:
    """A watch, and the connectors each of its polls asked about."""
    polls: list[list[str]] = []
    held_many = state.schedule.held_many

    async def counted(cids: list[str]) -> dict[str, bool]:
        polls.append(cids)
        return await held_many(cids)

    state.schedule.held_many = counted
    return HeldWatch(SimpleNamespace(state=state)), polls  # type: ignore[arg-type]


async def test_a_pause_reaches_a_batch_in_progress_within_a_refresh(state):
    watch, _ = watch_of(state)
    with watch.watching("c1"):
        await watch.refresh()
        assert not watch.held("c1")
        await state.set_status("c1", paused=1)

        await asyncio.sleep(REFRESH_S)
        await watch.refresh()
        assert watch.held("c1")
        await state.set_status("c1", paused=0)
        await asyncio.sleep(REFRESH_S)
        await watch.refresh()
        assert not watch.held("c1")


async def test_a_flag_a_flush_just_read_is_not_polled_again_until_it_is_old(state):
    watch, polls = watch_of(state)
    with watch.watching("c1"):
        watch.note("c1", False)  # the batch's context read it
        await state.set_status("c1", paused=1)  # the admin pauses right after

        await watch.refresh()
        assert polls == [] and not watch.held("c1")  # the batch's flag is fresh
        watch.note("c1", True)  # a flush finds the pause
        assert watch.held("c1")

        await state.set_status("c1", paused=0)
        await asyncio.sleep(REFRESH_S)
        await watch.refresh()  # the flag is old now: read again
        assert polls == [["c1"]] and not watch.held("c1")


async def test_a_worker_without_a_batch_in_progress_polls_nothing(state):
    watch, polls = watch_of(state)
    with watch.watching("c1"), watch.watching("c2"):
        await watch.refresh()
    with watch.watching("c3"):
        pass
    await asyncio.sleep(REFRESH_S)
    await watch.refresh()
    assert polls == [["c1", "c2"]]
    assert not watch.held("c1")
