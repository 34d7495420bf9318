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
queue (the others would take them): over its share, it puts the message back after a pause.

Redis: {ns}:claims (id -> message), {ns}:claims:token (id -> holder), {ns}:claims:due (zset).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage

from shared.messaging import outages

if TYPE_CHECKING:
    from shared.messaging.broker import Broker
    from shared.contracts import Contract

log = logging.getLogger(__name__)
ATTEMPTS = "x-scaidrive-attempts"  # deliveries spent while claimed (x-delivery-count restarts)
FULL_WAIT_S = 3.0  # a worker over its share of long jobs puts the message back after this

# Renew / release / take over only what this holder still owns (a reaper may have taken it).
_RENEW = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[1])
return 1"""
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1"""
_TAKE_OVER = """
local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[3]) then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return redis.call('HGET', KEYS[3], ARGV[1])"""


@dataclass
class Claimed:
    """What is needed to publish the message again."""
    body: str
    type: str
    exchange: str
    routing_key: str
    headers: dict
    attempts: int
    content_type: str = "application/json"

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> "Claimed":
        headers = {k: v for k, v in (message.headers or {}).items()
                   if k != "x-delivery-count" and isinstance(v, (str, int, float, bool))}
        # surrogateescape: a poison message's undecodable bytes go to the dead letters intact
        return cls(message.body.decode("utf-8", "surrogateescape"), message.type or "",
                   message.exchange or "", message.routing_key or "", headers,
                   int(headers.pop(ATTEMPTS, 0)), message.content_type or "application/json")


class Claims:
    def __init__(self, redis, namespace: str, ttl_s: float):
        self.r = redis
        self.ttl_s = ttl_s
        self.keys = [f"{namespace}:claims:token", f"{namespace}:claims:due",
                     f"{namespace}:claims"]
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._take_over = redis.register_script(_TAKE_OVER)

    async def take(self, claim_id: str, claimed: Claimed) -> str:
        token = uuid.uuid4().hex
        async with self.r.pipeline(transaction=True) as p:
            p.hset(self.keys[2], claim_id, json.dumps(claimed.__dict__))
            p.hset(self.keys[0], claim_id, token)
            p.zadd(self.keys[1], {claim_id: time.time() + self.ttl_s})
            await p.execute()
        return token

    async def renew(self, claim_id: str, token: str) -> bool:
        return bool(await self._renew(keys=self.keys, args=[
            claim_id, token, time.time() + self.ttl_s]))

    async def release(self, claim_id: str, token: str) -> None:
        await self._release(keys=self.keys, args=[claim_id, token])

    async def expired(self) -> list[tuple[str, str, Claimed]]:
        """Claims whose holder stopped renewing, each taken over by the caller (id, token,
        message); two reapers never both get the same one."""
        now = time.time()
        out = []
        for raw_id in await self.r.zrangebyscore(self.keys[1], "-inf", now, start=0, num=100):
            claim_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            token = "reaper:" + uuid.uuid4().hex
            raw = await self._take_over(keys=self.keys, args=[
                claim_id, token, now, now + self.ttl_s])
            if raw:
                out.append((claim_id, token, Claimed(**json.loads(raw))))
        return out


async def reap(claims: Claims, broker: "Broker") -> int:
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

    def __init__(self, claims: Claims, wants: Callable[["Contract"], bool], room: int):
        self.claims = claims
        self.wants = wants
        self.room = room
        self.held = 0
        self._tasks: set[asyncio.Task] = set()  # claimed work in progress (strong references)

    async def handle(self, broker: "Broker", message: AbstractIncomingMessage, msg: "Contract",
                     handler: Callable[[], Awaitable[None]]) -> None:
        if self.held >= self.room:
            await asyncio.sleep(FULL_WAIT_S)  # leave it to a worker with room, without a hot loop
            await broker.requeue_fresh(message)
            return
        self.held += 1  # taken before any await: messages arriving together see it
        try:
            claimed = Claimed.of(message)
            claim_id = ":".join((claimed.routing_key, getattr(msg, "run_id", ""),
                                 getattr(msg, "job_id", "")))
            token = await self.claims.take(claim_id, claimed)  # before the ack: never neither
            await message.ack()
        except BaseException:
            self.held -= 1
            raise
        # Acked and claimed, the work no longer depends on the channel: if the channel closes
        # (a broker blip), the consumer's callback is cancelled but the transfer goes on.
        work = asyncio.ensure_future(self._claimed(broker, claimed, handler, claim_id, token))
        self._tasks.add(work)
        work.add_done_callback(self._tasks.discard)
        await asyncio.shield(work)

    async def _claimed(self, broker: "Broker", claimed: Claimed, handler, claim_id: str,
                       token: str) -> None:
        beat = asyncio.create_task(self._heartbeat(claim_id, token))
        try:
            await self._run(broker, claimed, handler)
            with contextlib.suppress(Exception):  # left over: the reaper republishes it
                await self.claims.release(claim_id, token)
        finally:
            beat.cancel()
            self.held -= 1

    async def _run(self, broker: "Broker", claimed: Claimed, handler) -> None:
        """The broker's own retry rules, applied by hand (the message is acked already)."""
        from shared.messaging.broker import Defer
        try:
            await handler()
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
