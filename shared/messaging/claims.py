"""Long work outlives the broker's consumer timeout without being cut off.

RabbitMQ closes a channel whose delivery stays unacknowledged past `consumer_timeout` (30 min by
default) and redelivers everything on it: a 20 GB upload would start over, time out again, and
cascade into the dead-letter queue. So a message whose handling may be long (a big file, a scan)
is *claimed* instead: its body goes to Redis with an expiry that a heartbeat renews, and only
then is it acked. The claim is what keeps it alive from there on:

  - the handler ends (done, or its failure recorded)   -> the claim is released;
  - it fails and may retry, or a dependency is down     -> the message is republished, then
                                                          released (attempts counted by hand,
                                                          ending in the dead-letter queue);
  - the worker dies (no heartbeat)                      -> the claim expires and the scheduler's
                                                          reaper republishes it (`reap`).

A worker holds at most `room` claims at once, so one worker cannot hoard every long job of a
queue (the others would take them): over its share, a message waits up to FULL_WAIT_S for a
claim of this worker to end and takes its place at once; if none ends, it is put back. (An acked
claim frees its prefetch slot, so the broker keeps delivering beyond `room`: before, each such
message slept the whole pause and went back, and a freed place stayed idle until one of them
woke; a worker scanning many small shares did one scan per place every ~3 s.)

The claims are kept by the store (shared/store/claim_records.py: keys and scripts), seen here
through `ClaimKeeper`; the broker through `Redelivery` (shared/messaging/redelivery.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any, Protocol

from aio_pika.abc import AbstractIncomingMessage

from shared.contracts import Contract
from shared.messaging import outages
from shared.messaging.redelivery import Claimed, Defer, Park, Redelivery

log = logging.getLogger(__name__)
FULL_WAIT_S = 3.0  # a worker over its share of long jobs puts the message back after this


class ClaimKeeper(Protocol):
    """Where claims are kept (shared/store/claim_records.py: `ClaimRecords`)."""

    async def take(self, claim_id: str, message: dict[str, Any], ttl_s: float) -> str: ...

    async def renew(self, claim_id: str, token: str, ttl_s: float) -> bool: ...

    async def release(self, claim_id: str, token: str) -> None: ...

    async def take_over_expired(self, ttl_s: float) -> Sequence[tuple[str, str, dict[str, Any]]]:
        ...


class Claims:
    """The claims of one process, each expiring `ttl_s` after its last renewal."""

    def __init__(self, keeper: ClaimKeeper, ttl_s: float):
        self.keeper = keeper
        self.ttl_s = ttl_s

    async def take(self, claim_id: str, claimed: Claimed) -> str:
        return await self.keeper.take(claim_id, asdict(claimed), self.ttl_s)

    async def renew(self, claim_id: str, token: str) -> bool:
        return await self.keeper.renew(claim_id, token, self.ttl_s)

    async def release(self, claim_id: str, token: str) -> None:
        await self.keeper.release(claim_id, token)

    async def expired(self) -> list[tuple[str, str, Claimed]]:
        """Claims whose holder stopped renewing, each taken over by the caller (id, token,
        message); two reapers never both get the same one."""
        return [(claim_id, token, Claimed(**message)) for claim_id, token, message
                in await self.keeper.take_over_expired(self.ttl_s)]


async def reap(claims: Claims, broker: Redelivery) -> int:
    """Republish the messages of workers that died holding them (the scheduler calls this)."""
    reaped = 0
    for claim_id, token, claimed in await claims.expired():
        claimed.attempts += 1
        log.warning("worker lost while holding %s %s (attempt %d): republished", claimed.type,
                    claim_id, claimed.attempts)
        if claimed.attempts >= broker.delivery_limit:
            await broker.dead_letter_claimed(claimed, "worker lost while holding the message "
                                             f"{claimed.attempts} times")
        else:
            await broker.republish(claimed)
        await claims.release(claim_id, token)
        reaped += 1
    return reaped


class LongWork:
    """Which messages a consumer claims (`wants`), and how many at once (`room`)."""

    def __init__(self, claims: Claims, wants: Callable[[Contract], bool], room: int):
        self.claims = claims
        self.wants = wants
        self.room = room
        self.held = 0
        self._freed = asyncio.Event()  # set whenever a claim ends
        self._tasks: set[asyncio.Task[None]] = set()  # claimed work in progress (strong refs)

    async def handle(self, broker: Redelivery, message: AbstractIncomingMessage, msg: Contract,
                     handler: Callable[[], Awaitable[None]]) -> None:
        if not await self._take_place():
            await broker.requeue_fresh(message)  # leave it to a worker with room
            return
        try:
            claimed = Claimed.of(message)
            claim_id = ":".join((claimed.routing_key, getattr(msg, "run_id", ""),
                                 getattr(msg, "job_id", "")))
            token = await self.claims.take(claim_id, claimed)  # before the ack: never neither
            await message.ack()
        except BaseException:
            self._free_place()
            raise
        # Acked and claimed, the work no longer depends on the channel: if the channel closes
        # (a broker blip), the consumer's callback is cancelled but the transfer goes on.
        work = asyncio.ensure_future(self._claimed(broker, claimed, handler, claim_id, token))
        self._tasks.add(work)
        work.add_done_callback(self._tasks.discard)
        await asyncio.shield(work)

    async def _claimed(self, broker: Redelivery, claimed: Claimed,
                       handler: Callable[[], Awaitable[None]], claim_id: str,
                       token: str) -> None:
        beat = asyncio.create_task(self._heartbeat(claim_id, token))
        try:
            await self._run(broker, claimed, handler)
            with contextlib.suppress(Exception):  # left over: the reaper republishes it
                await self.claims.release(claim_id, token)
        finally:
            beat.cancel()
            self._free_place()

    async def _take_place(self) -> bool:
        """A place among the `room` claims, waiting up to FULL_WAIT_S for one to free up;
        False if none did. The check and the taking have no await between them: messages
        arriving together, or woken together, never take one place twice."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FULL_WAIT_S
        while self.held >= self.room:
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), left)
            except TimeoutError:
                return False
        self.held += 1
        return True

    def _free_place(self) -> None:
        self.held -= 1
        self._freed.set()

    async def _run(self, broker: Redelivery, claimed: Claimed,
                   handler: Callable[[], Awaitable[None]]) -> None:
        """The broker's own retry rules, applied by hand (the message is acked already)."""
        try:
            await handler()
        except Park as exc:
            await broker.park(claimed, exc)
        except Defer:
            await broker.republish(claimed)
        except Exception as exc:
            if outages.is_outage(exc):
                log.warning("dependency unavailable, %s put back: %s", claimed.type, exc)
                await asyncio.sleep(outages.WAIT_S)
                await broker.republish(claimed)
                return
            claimed.attempts += 1
            if claimed.attempts >= broker.delivery_limit:
                await broker.dead_letter_claimed(claimed, f"{type(exc).__name__}: {exc}")
                return
            log.warning("long handler failed (attempt %d of %d), retrying: %s: %s",
                        claimed.attempts, broker.delivery_limit, type(exc).__name__, exc)
            await asyncio.sleep(min(2 ** claimed.attempts, 30))
            await broker.republish(claimed)

    async def _heartbeat(self, claim_id: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.claims.ttl_s / 3)
            try:
                if not await self.claims.renew(claim_id, token):
                    log.warning("claim %s was taken over (this worker was presumed dead)",
                                claim_id)
                    return
            except Exception as exc:  # Redis blip: the next beat tries again
                log.warning("could not renew claim %s: %s", claim_id, exc)
