"""A connector's throttles, held across every transfer worker (the connector's settings:
shared/config/sync_windows.py; the shared state: shared/store/throttle_records.py).

- `Throttle.file(c, run_id)`, around each file (a job alone, or each file of a batch):
  * outside the connector's `sync_windows` the file does not start: the run's lease is kept
    without expiry (the run waits, as when paused) and `OutsideWindow` is raised, a `Park`: a
    job's message is parked (shared/app/held_work.py), a batch stops between files and parks
    what is left; the scheduler moves the work back;
  * with `max_parallel_transfers`, a slot of the connector's semaphore is held for the file
    (renewed every SLOT_TTL_S / 3, so a killed worker's slot comes back within SLOT_TTL_S). A
    job that finds none free within SLOT_PATIENCE_S goes back to the end of its queue
    (`SlotsBusy`, a `Defer`: no attempt spent) rather than holding its lane; a batch waits.
- `Throttle.pace(c)`, per upload: with a `bandwidth_limit`, the reader the bucket's bytes are
  read through takes tokens of the connector's bucket a chunk at a time (CHUNK_MAX at most,
  about an eighth of a second's worth) and waits while the bucket is in debt, in the upload's
  own thread: memory stays one chunk per read and the rate smooth, whichever workers share it.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.config.sync_windows import bandwidth_at, in_window, timezone_of
from shared.messaging.redelivery import Defer, Park
from shared.storage.s3 import Readable

log = logging.getLogger(__name__)
SLOT_TTL_S = 30.0
SLOT_PATIENCE_S = 10.0  # a job waits this long for a slot before going back to its queue
POLL_S = (0.02, 0.5)  # a slot is asked for again after this, doubling up to the second
CHUNK_MAX = 1 << 20
CHUNK_MIN = 16 << 10
TAKE_TIMEOUT_S = 30.0


class OutsideWindow(Park):
    """The connector's sync window is closed: its work waits (parked) until it opens."""


class SlotsBusy(Defer):
    """Every transfer slot of the connector is held: try the message again later."""


def chunk_for(rate: int) -> int:
    """Bytes taken from the bucket at a time: an eighth of a second's worth, 16 KiB to 1 MiB."""
    return max(CHUNK_MIN, min(CHUNK_MAX, rate // 8))


class Throttle:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        # Waiters of one process queue here, so only the connector's limit of them asks Redis.
        self.local: dict[str, tuple[int, asyncio.Semaphore]] = {}

    @contextlib.asynccontextmanager
    async def file(self, c: Connector, run_id: str,
                   patience_s: float | None = SLOT_PATIENCE_S) -> AsyncIterator[None]:
        """Hold what one file of `c` needs to move now (see the module's doc); `patience_s`:
        how long to wait for a slot (None: as long as it takes)."""
        if c.sync_windows is not None and not in_window(c.sync_windows, datetime.now(UTC)):
            await self._wait_for_window(c, run_id)
        limit = c.max_parallel_transfers
        if limit is None:
            yield
            return
        gate = self._gate(c.id, limit)
        token = uuid.uuid4().hex
        if not await self._take_slot(gate, c.id, token, limit, patience_s):
            raise SlotsBusy(f"all {limit} transfer slots of connector {c.id} are held")
        renewing = asyncio.create_task(self._renew(c.id, token))
        try:
            yield
        finally:
            renewing.cancel()
            gate.release()
            await self.rt.state.throttles.release_slot(c.id, token)

    async def _take_slot(self, gate: asyncio.Semaphore, cid: str, token: str, limit: int,
                         patience_s: float | None) -> bool:
        """The process's gate, then a slot in Redis, within `patience_s` (None: however long it
        takes); False if none came in time, and neither is kept if interrupted. The patience is
        a deadline checked between asks, not a cancel of the ask in flight: a Redis call cut
        off midway costs its connection (dropped, as its reply is unread) and may leave a slot
        taken that only the release after it gives back."""
        deadline = None if patience_s is None else time.monotonic() + patience_s
        try:
            async with asyncio.timeout(patience_s):
                await gate.acquire()
        except TimeoutError:
            return False
        try:
            pause = POLL_S[0]
            while not await self.rt.state.throttles.acquire_slot(cid, token, limit, SLOT_TTL_S):
                left = math.inf if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    gate.release()
                    return False
                await asyncio.sleep(min(left, pause * random.uniform(0.5, 1.5)))
                pause = min(pause * 2, POLL_S[1])
        except BaseException:
            gate.release()
            with contextlib.suppress(Exception):
                await asyncio.shield(self.rt.state.throttles.release_slot(cid, token))
            raise
        return True

    async def _wait_for_window(self, c: Connector, run_id: str) -> None:
        state = self.rt.state
        if await state.lease_holder(c.id) == run_id:
            await state.hold_lease(c.id, None)  # the run waits for its window, as when paused
        await state.schedule.mark_parked(c.id)
        log.info("outside its sync window: work parked until it opens",
                 extra={"connector_id": c.id, "run_id": run_id})
        raise OutsideWindow(c.id, noted=lambda: state.schedule.mark_parked(c.id))

    def _gate(self, cid: str, limit: int) -> asyncio.Semaphore:
        known = self.local.get(cid)
        if known is None or known[0] != limit:
            known = (limit, asyncio.Semaphore(limit))  # a new limit: holders of the old finish
            self.local[cid] = known
        return known[1]

    async def _renew(self, cid: str, token: str) -> None:
        while True:
            await asyncio.sleep(SLOT_TTL_S / 3)
            try:
                if not await self.rt.state.throttles.renew_slot(cid, token, SLOT_TTL_S):
                    log.warning("a transfer slot expired while its file moved",
                                extra={"connector_id": cid})
                    return
            except Exception as exc:  # a Redis blip: the next beat tries again
                log.warning("could not renew a transfer slot: %s", exc,
                            extra={"connector_id": cid})

    def pace(self, c: Connector) -> Pace | None:
        """What an upload of `c` reads through (`Pace.reader`), None without a limit. Called
        on the event loop; the reader is then used from the upload's thread."""
        if c.bandwidth_limit is None:
            return None
        return Pace(self, c, asyncio.get_running_loop())


class Pace:
    """One upload's side of the connector's bandwidth bucket."""

    def __init__(self, throttle: Throttle, c: Connector, loop: asyncio.AbstractEventLoop):
        self.throttle = throttle
        self.c = c
        self.loop = loop
        self.zone = timezone_of(c.sync_windows)

    def reader(self, raw: Readable) -> PacedReader:
        return PacedReader(raw, self)

    def spend(self, nbytes: int, rate: int) -> None:
        """From the upload's thread: reserve `nbytes` and sleep until they may go."""
        take = self.throttle.rt.state.throttles.take_bytes(self.c.id, nbytes, rate,
                                                           chunk_for(rate))
        wait = asyncio.run_coroutine_threadsafe(take, self.loop).result(TAKE_TIMEOUT_S)
        if wait > 0:
            time.sleep(wait)

    def rate(self) -> int | None:
        """Bytes per second now (a timetable's entry changes during a long upload)."""
        return bandwidth_at(self.c.bandwidth_limit, datetime.now(UTC), self.zone)


class PacedReader:
    """`read(n)` a chunk at a time, each paid for in the connector's bucket before it is
    returned (S3's multipart reader asks again until it has its part)."""

    def __init__(self, raw: Readable, pace: Pace):
        self.raw = raw
        self.pace = pace

    def read(self, size: int = -1, /) -> bytes:
        rate = self.pace.rate()
        if rate is None:
            return self.raw.read(size)
        chunk = chunk_for(rate)
        data = self.raw.read(chunk if size is None or size < 0 else min(size, chunk))
        if data:
            self.pace.spend(len(data), rate)
        return data
