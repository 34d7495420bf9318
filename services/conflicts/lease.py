"""Work on one conflict that one process does at a time, under a short lease in Redis.

`exclusive` takes the lease (SET NX PX, `LEASE_S`), renews it every `RENEW_EVERY_S` while the
work runs, and releases it at the end. A holder that dies (SIGKILL, a lost host) stops
renewing: its lease expires within `LEASE_S` and another process takes the work over. A holder
that finds its lease gone (it stalled past the lease, and someone may have taken over) stops
its work at once (`LeaseLost`) rather than doing it alongside the new holder.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from shared.store.conflict_records import ConflictStore

log = logging.getLogger(__name__)
LEASE_S = 10.0  # a dead holder's work is taken over this long after its last renewal
RENEW_EVERY_S = 3.0  # two renewals may fail (a Redis blip) before the lease runs out


class LeaseLost(Exception):
    """The lease expired under its holder (a stall past it): the work was stopped."""


async def exclusive(store: ConflictStore, conflict_id: str, what: str,
                    work: Callable[[], Awaitable[None]], lease_s: float = LEASE_S,
                    renew_every_s: float = RENEW_EVERY_S) -> bool:
    """Run `work` under the lease on (`conflict_id`, `what`); False without running it if
    another process holds the lease. The work's own exception is raised as it is."""
    token = await store.claim(conflict_id, what, lease_s)
    if token is None:
        return False
    job = asyncio.ensure_future(work())
    beat = asyncio.ensure_future(_renew(store, conflict_id, what, token, lease_s,
                                        renew_every_s))
    try:
        await asyncio.wait({job, beat}, return_when=asyncio.FIRST_COMPLETED)
        if not job.done():
            raise LeaseLost(f"the lease on {what} of conflict {conflict_id} was lost")
        job.result()
        return True
    finally:
        job.cancel()
        beat.cancel()
        with contextlib.suppress(Exception):  # unreleased, it expires by itself
            await store.release(conflict_id, what, token)


async def _renew(store: ConflictStore, conflict_id: str, what: str, token: str,
                 lease_s: float, every_s: float) -> None:
    """Returns only once the lease is no longer this holder's."""
    while True:
        await asyncio.sleep(every_s)
        try:
            if not await store.renew(conflict_id, what, token, lease_s):
                log.warning("lease on %s of conflict %s lost: stopping", what, conflict_id)
                return
        except Exception as exc:  # Redis unreachable: try again, the lease has slack
            log.warning("lease on %s of conflict %s not renewed: %s", what, conflict_id, exc)
