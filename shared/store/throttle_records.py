"""A connector's throttles as every transfer worker shares them (services/transfer/throttle.py):
its bandwidth as a token bucket, its files in flight as a semaphore whose holders expire. A
family of `Store` (`Store.throttles`). Key layout ({ns} = SCAIDRIVE_NAMESPACE):

  {ns}:bw:{cid}      hash: tokens (bytes, negative while takers wait), at (µs, Redis time of the
                     last take); expires a minute after the bucket would be full again
  {ns}:slots:{cid}   sorted set: holder token -> when its hold expires (ms, Redis time); an
                     expired holder (a killed worker) is dropped by the next acquire; the key
                     expires with its last holder

The bucket hands out reservations: a take always succeeds and answers how long the taker must
wait before using the bytes (the debt over the rate), so takers on any number of workers share
the rate in the order they asked, with one round trip per chunk. Both scripts read Redis's own
clock (TIME), so workers' clocks do not matter, and each names one key: one slot in a cluster.
"""
from __future__ import annotations

from shared.store.replies import text
from shared.store.state import State

# KEYS: bucket; ARGV: rate (bytes/s), burst (bytes), bytes wanted. Microseconds to wait.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local got = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(got[1]), tonumber(got[2])
if tokens == nil or at == nil or at > now then tokens = burst; at = now end
tokens = math.min(burst, tokens + (now - at) * rate / 1000000) - want
redis.call('HSET', KEYS[1], 'tokens', string.format('%.3f', tokens),
           'at', string.format('%.0f', now))
local wait = 0
if tokens < 0 then wait = math.ceil(-tokens * 1000000 / rate) end
redis.call('PEXPIRE', KEYS[1], math.ceil(wait / 1000 + burst * 1000 / rate) + 60000)
return wait
"""

# KEYS: slots; ARGV: token, limit, ttl (ms). 1 if the token holds a slot now.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and
   redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
"""

# KEYS: slots; ARGV: token, ttl (ms). 1 if the token still held its slot (now renewed).
_RENEW = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
"""


class ThrottleRecords:
    def __init__(self, state: State) -> None:
        self.state = state
        self.r = state.r
        self._take = state.r.register_script(_TAKE)
        self._acquire = state.r.register_script(_ACQUIRE)
        self._renew = state.r.register_script(_RENEW)

    def _bucket(self, cid: str) -> str:
        return self.state.key("bw", cid)

    def _slots(self, cid: str) -> str:
        return self.state.key("slots", cid)

    async def take_bytes(self, cid: str, nbytes: int, rate: int, burst: int) -> float:
        """Reserve `nbytes` of the connector's bandwidth (`rate` bytes per second, at most
        `burst` saved up while idle): the seconds to wait before moving them."""
        waited = await self._take(keys=[self._bucket(cid)], args=[rate, burst, nbytes])
        return int(waited) / 1_000_000

    async def acquire_slot(self, cid: str, token: str, limit: int, ttl_s: float) -> bool:
        """Take one of the connector's `limit` slots for `token` (kept `ttl_s` unless renewed);
        False when all are held."""
        return bool(await self._acquire(keys=[self._slots(cid)],
                                        args=[token, limit, max(1, int(ttl_s * 1000))]))

    async def renew_slot(self, cid: str, token: str, ttl_s: float) -> bool:
        """Keep the slot `ttl_s` more; False if it was lost (expired and taken)."""
        return bool(await self._renew(keys=[self._slots(cid)],
                                      args=[token, max(1, int(ttl_s * 1000))]))

    async def release_slot(self, cid: str, token: str) -> None:
        await self.r.zrem(self._slots(cid), token)

    async def slot_holders(self, cid: str) -> int:
        """Slots held now, expired ones included until the next acquire drops them."""
        return int(await self.r.zcard(self._slots(cid)))

    async def debt(self, cid: str) -> float:
        """Bytes reserved beyond the bucket (negative tokens), as last written: 0 when idle."""
        tokens = text(await self.r.hget(self._bucket(cid), "tokens"))
        return max(0.0, -float(tokens)) if tokens else 0.0
