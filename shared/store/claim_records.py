"""Claims of long work, kept in Redis: the message a worker acked early, who holds it, and when
its holder's heartbeat is overdue (shared/messaging/claims.py says why, and what happens then).

Key layout ({ns} = SCAIDRIVE_NAMESPACE):

  {ns}:claims                    hash claim id -> JSON message (what it takes to publish it again)
  {ns}:claims:token              hash claim id -> token of its holder (a worker, or a reaper)
  {ns}:claims:due                sorted set claim id -> when the claim expires (epoch s)

In cluster mode the three share a slot: `{ns}:{claims}`, `{ns}:{claims}:token`, `{ns}:{claims}:due`.

Renewing, releasing and taking over are Lua scripts that check the token: a holder presumed
dead, whose claim a reaper took over, can no longer renew or release it.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from shared.store.connection import tagger

TAKE_OVER_BATCH = 100  # expired claims handed to a reaper per call

# KEYS: token, due, claims. Renew / release / take over only what this holder still owns.
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


class TakenOver(NamedTuple):
    """An expired claim, now the caller's: its id, the caller's token, the stored message."""
    claim_id: str
    token: str
    message: dict[str, Any]


class ClaimRecords:
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self._r = redis
        base = f"{namespace}:{tagger(redis)('claims')}"
        self._token, self._due, self._messages = f"{base}:token", f"{base}:due", base
        self._keys = [self._token, self._due, self._messages]
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._take_over = redis.register_script(_TAKE_OVER)

    async def take(self, claim_id: str, message: dict[str, Any], ttl_s: float) -> str:
        """Keep `message` (JSON-able) under a new claim expiring in `ttl_s`; its token."""
        token = uuid.uuid4().hex
        async with self._r.pipeline(transaction=True) as p:
            p.hset(self._messages, claim_id, json.dumps(message))
            p.hset(self._token, claim_id, token)
            p.zadd(self._due, {claim_id: time.time() + ttl_s})
            await p.execute()
        return token

    async def renew(self, claim_id: str, token: str, ttl_s: float) -> bool:
        """Push the expiry `ttl_s` on; False if the claim is no longer this token's."""
        return bool(await self._renew(keys=self._keys,
                                      args=[claim_id, token, time.time() + ttl_s]))

    async def release(self, claim_id: str, token: str) -> None:
        """Forget the claim and its message, if it is still this token's."""
        await self._release(keys=self._keys, args=[claim_id, token])

    async def take_over_expired(self, ttl_s: float) -> list[TakenOver]:
        """Claims whose holder stopped renewing, each now the caller's for `ttl_s`; two callers
        never both get the same one."""
        now = time.time()
        out: list[TakenOver] = []
        due = await self._r.zrangebyscore(self._due, "-inf", now, start=0, num=TAKE_OVER_BATCH)
        for raw_id in due:
            claim_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            token = "reaper:" + uuid.uuid4().hex
            raw = await self._take_over(keys=self._keys, args=[claim_id, token, now, now + ttl_s])
            if raw:
                out.append(TakenOver(claim_id, token, json.loads(raw)))
        return out
