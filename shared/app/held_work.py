"""A held connector's work (paused by an admin, or its credentials refused), at the stages that
share lanes (shared/messaging/lanes.py): consumers park it, the scheduler moves it back.

- `park`: note the connector in the store's parked set, then raise `Park` (the broker moves the
  message to the connector's parked queue, notes the connector again, then acks it). Noted
  first, so a parked message is always found again even after a crash; noted after, because the
  scheduler's `unpark_resumed` may forget the connector (its parked queue empty and deleted)
  between the first note and the message's arrival in a new parked queue.
- `HeldWatch`: the held flag of each connector a worker has a batch of in progress (`watching`),
  refreshed in one round trip every `REFRESH_S`, so the batch stops between files within a
  second of a pause. A flag read with other work (a batch's context, its flushes: `note`) is
  not read again until it is REFRESH_S old: a worker busy with small files polls nothing more,
  and an idle worker polls nothing at all.
- `PauseGate`: long work of one connector that is not a message per step (a scan's walk and
  its owner lookups) waits at its next boundary (a folder, a chunk) while the connector is
  held, keeping its lease and its place; it goes on where it stopped once resumed.
- `unpark_resumed`: the scheduler's part: every connector with parked work and no longer held
  gets it back in its lanes.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NoReturn

from shared.app.runtime import Runtime
from shared.config.sync_windows import in_window
from shared.messaging.redelivery import Park

log = logging.getLogger(__name__)
REFRESH_S = 0.5
UNPARK_TIMEOUT_S = 30.0  # a stalled broker call must not stop the scheduler's tick for good


async def park(rt: Runtime, connector_id: str) -> NoReturn:
    await rt.state.schedule.mark_parked(connector_id)
    raise Park(connector_id, noted=lambda: rt.state.schedule.mark_parked(connector_id))


class HeldWatch:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.flags: dict[str, bool] = {}
        self.read_at: dict[str, float] = {}  # when each flag was last read
        self.batches: Counter[str] = Counter()  # batches in progress, by connector

    @contextlib.contextmanager
    def watching(self, connector_id: str) -> Iterator[None]:
        """While a batch of the connector is in progress here: its flag is kept fresh."""
        self.batches[connector_id] += 1
        try:
            yield
        finally:
            self.batches[connector_id] -= 1
            if not self.batches[connector_id]:
                del self.batches[connector_id]
                self.flags.pop(connector_id, None)
                self.read_at.pop(connector_id, None)

    def held(self, connector_id: str) -> bool:
        """As last read (within REFRESH_S or two); False until first read (the batch's message
        was checked when it arrived)."""
        return self.flags.get(connector_id, False)

    def note(self, connector_id: str, held: bool) -> None:
        """The connector's held flag as just read with other work."""
        if connector_id in self.batches:
            self.flags[connector_id] = held
            self.read_at[connector_id] = time.monotonic()

    async def refresh(self) -> None:
        now = time.monotonic()
        due = sorted(c for c in self.batches
                     if now - self.read_at.get(c, float("-inf")) >= REFRESH_S)
        if not due:
            return
        for cid, held in (await self.rt.state.schedule.held_many(due)).items():
            if cid in self.batches and self.read_at.get(cid, float("-inf")) <= now:
                self.flags[cid] = held  # neither ended nor noted meanwhile: ours is newest
                self.read_at[cid] = now

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # Redis blip: keep the last flags
                log.warning("could not read held flags: %s", exc)
            await asyncio.sleep(REFRESH_S)

    def start(self) -> None:
        self.rt.tasks.append(asyncio.create_task(self.run()))


class PauseGate:
    def __init__(self, rt: Runtime, connector_id: str, every_s: float = REFRESH_S):
        self.rt = rt
        self.cid = connector_id
        self.every_s = every_s
        self.checked = 0.0

    async def held(self) -> bool:
        """Is the connector held? (read at most every `every_s`; False in between)"""
        if time.monotonic() - self.checked < self.every_s:
            return False
        self.checked = time.monotonic()
        return await self.rt.state.paused(self.cid)

    async def wait(self) -> None:
        """Return at once unless the connector is held; while it is, wait."""
        if await self.held():
            await self.until_resumed()

    async def until_resumed(self) -> None:
        log.info("held: waiting at a boundary until resumed", extra={"connector_id": self.cid})
        while True:  # polled: the flag is in Redis
            await asyncio.sleep(self.every_s)
            if not await self.rt.state.paused(self.cid):
                break
        log.info("resumed: going on", extra={"connector_id": self.cid})


async def unpark_resumed(rt: Runtime) -> int:
    """Move parked work of connectors no longer held back to its lanes; returns how many
    messages moved."""
    parked = await rt.state.schedule.parked()
    if not parked:
        return 0
    now = datetime.now(UTC)
    moved = 0
    for cid, (c, held) in zip(parked, await rt.state.connectors_held(parked), strict=True):
        if held or (c is not None and not in_window(c.sync_windows, now)):
            continue  # held, or its sync window closed: the work waits, parked
        log.info("moving parked work back to its lanes", extra={"connector_id": cid})
        count, gone = await asyncio.wait_for(rt.broker.unpark(cid), UNPARK_TIMEOUT_S)
        moved += count
        if gone:
            await rt.state.schedule.unmark_parked(cid)
            # A worker may have parked between the queue's deletion and the unmark: look again.
            count, gone = await asyncio.wait_for(rt.broker.unpark(cid), UNPARK_TIMEOUT_S)
            moved += count
            if not gone:
                await rt.state.schedule.mark_parked(cid)
        if count:
            log.info("resumed: %d parked messages back in their lanes", count,
                     extra={"connector_id": cid})
    return moved
