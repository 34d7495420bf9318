"""A transfer worker's held flags (shared/app/held_work.py `HeldWatch`) against the real Redis:
a pause reaches a busy worker within a refresh period or two, whether the flag comes from its
own polling or from a batch's flush, and a flag a flush has just read is not polled again (a
worker busy with small files costs Redis nothing more for pauses)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from shared.app.held_work import REFRESH_S, HeldWatch


def watch_of(state) -> HeldWatch:
    return HeldWatch(SimpleNamespace(state=state))  # type: ignore[arg-type]


async def test_a_pause_reaches_a_busy_worker_within_a_refresh(state):
    watch = watch_of(state)
    assert not watch.held("c1")  # busy with c1's batch
    await watch.refresh()
    await state.set_status("c1", paused=1)

    await asyncio.sleep(REFRESH_S)
    await watch.refresh()
    assert watch.held("c1")
    await state.set_status("c1", paused=0)
    await asyncio.sleep(REFRESH_S)
    await watch.refresh()
    assert not watch.held("c1")


async def test_a_flag_a_flush_just_read_is_not_polled_again_until_it_is_old(state):
    watch = watch_of(state)
    assert not watch.held("c1")
    watch.note("c1", False)  # a flush's script read it
    await state.set_status("c1", paused=1)  # the admin pauses right after

    await watch.refresh()  # no read: the flush's flag is fresh
    assert not watch.held("c1")
    watch.note("c1", True)  # the next flush finds the pause
    assert watch.held("c1")

    await state.set_status("c1", paused=0)
    await asyncio.sleep(REFRESH_S)
    await watch.refresh()  # the flag is old now: read again
    assert not watch.held("c1")
