"""Conflicts of two-way connectors, kept in Redis. Key layout ({ns} = SCAIDRIVE_NAMESPACE):

  {ns}:conflict:{id}               hash: the record (versions as JSON) and its once-only flags
  {ns}:conflict:{id}:claim:{what}  string, PX: who is doing a once-only side effect right now
  {ns}:conflicts:{cid}             hash id -> detected time (epoch s): the connector's conflicts
                                   (a hash rather than a sorted set, so the e2e secret scans,
                                   which read strings/hashes/lists/sets, cover it too)
  {ns}:conflicts:held:{cid}        hash path -> conflict id: paths runs must leave alone

A path is held from detection until the transfer worker has applied the resolution
(`applied`), or until the conflict is superseded (by a newer conflict on the path, or when the
transfer worker finds a side changed since detection before applying the decision: the next
run detects it anew). State changes are compare-and-set Lua scripts: two resolves can never
both win.

In cluster mode (shared/store/connection.py) each key braces its id, `{ns}:conflict:{<id>}`,
`{ns}:conflicts:{<cid>}`, `{ns}:conflicts:held:{<cid>}`: a record is found by its id alone, so
it cannot live in its connector's slot, and `create` is steps instead of one script: the record
(created once: _CREATE_RECORD), then the listing, the superseded older conflict and the hold.
A crash between them leaves an open record whose path is not held: its redelivery (the record
exists) holds it then, if nothing holds the path meanwhile.
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

import redis.asyncio as aioredis

from shared.contracts import ConflictDetected
from shared.store.connection import is_cluster, tagger
from shared.store.replies import maybe_texts, text, text_hash, texts

STATES = ("open", "resolved", "superseded")
_JSON_FIELDS = ("source", "scaidrive", "source_version")
_FLAGS = ("mailed", "published_detected", "published_resolved", "published_superseded",
          "automatic")
READ_BATCH = 200

# Create the record once (a redelivered or re-detected conflict is the same id); hold the path.
# An older open conflict on the same path is superseded by this one.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local old = redis.call('HGET', KEYS[3], ARGV[2])
if old and old ~= ARGV[1] and old == ARGV[4] and redis.call('HGET', KEYS[4], 'state') == 'open' then
  redis.call('HSET', KEYS[4], 'state', 'superseded', 'superseded_by', ARGV[1])
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
return 1
"""

# Move a record from `open` to a new state; returns the state found ('open' = this call won).
_TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
if state ~= ARGV[1] then return state end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return ARGV[1]
"""

# Release a held path, but only while it is held for this conflict.
_UNHOLD = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

# A flag set once on an existing record (HSETNX alone would create a stray hash).
_FLAG = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
"""

# Cluster mode's first step of _CREATE: the record, once. KEYS: record; ARGV: its fields.
_CREATE_RECORD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def decode(raw: dict[str, str]) -> dict:
    """A stored hash as the API shows it: versions as objects, flags as booleans."""
    out: dict = dict(raw)
    for f in _JSON_FIELDS:
        if f in out:
            out[f] = json.loads(out[f])
    for f in _FLAGS:
        out[f] = out.get(f) == "1"
    for f in ("resolved_at", "resolved_by", "winner", "applied_at", "superseded_by"):
        out.setdefault(f, None)
    return out


class ConflictStore:
    def __init__(self, redis: aioredis.Redis, namespace: str):
        self.r = redis
        self.ns = namespace
        self._cluster = is_cluster(redis)
        self._tag = tagger(redis)  # {id} in cluster mode
        self._create = redis.register_script(_CREATE)
        self._create_record = redis.register_script(_CREATE_RECORD)
        self._transition = redis.register_script(_TRANSITION)
        self._unhold = redis.register_script(_UNHOLD)
        self._flag = redis.register_script(_FLAG)
        self._release = redis.register_script(_RELEASE)

    def _record(self, conflict_id: str) -> str:
        return f"{self.ns}:conflict:{self._tag(conflict_id)}"

    def _list(self, connector_id: str) -> str:
        return f"{self.ns}:conflicts:{self._tag(connector_id)}"

    def _held(self, connector_id: str) -> str:
        return f"{self.ns}:conflicts:held:{self._tag(connector_id)}"

    # --- the interface the scanner and the transfer worker use ---------------------------

    async def held_paths(self, connector_id: str) -> dict[str, str]:
        """path -> conflict id of every path a run must skip."""
        return text_hash(await self.r.hgetall(self._held(connector_id)))

    async def held_counts(self, connector_ids: list[str]) -> list[int]:
        """How many paths each connector holds (open, or decided and not yet applied)."""
        async with self.r.pipeline(transaction=False) as p:
            for cid in connector_ids:
                p.hlen(self._held(cid))
            return await p.execute()

    async def applied(self, conflict_id: str) -> None:
        """The transfer worker applied the decision: the path syncs normally again."""
        cid, path = maybe_texts(await self.r.hmget(self._record(conflict_id), "connector_id",
                                                   "path"))
        if cid is None or path is None:  # no such conflict (both are written together)
            return
        await self._unhold(keys=[self._held(cid)], args=[path, conflict_id])
        await self._flag(keys=[self._record(conflict_id)], args=["applied_at", _now()])

    async def get(self, conflict_id: str) -> dict | None:
        raw = text_hash(await self.r.hgetall(self._record(conflict_id)))
        return decode(raw) if raw else None

    async def forget_connector(self, connector_id: str) -> None:
        """The connector is deleted: its conflicts, their claims and held paths go too."""
        ids = texts(await self.r.hkeys(self._list(connector_id)))
        keys = [self._list(connector_id), self._held(connector_id)]
        for cid in ids:
            keys += [self._record(cid)] + [f"{self._record(cid)}:claim:{w}"
                                           for w in ("mail", "detected", "resolved")]
        for i in range(0, len(keys), 500):
            await self.r.delete(*keys[i:i + 500])

    # --- recording and deciding ---------------------------------------------------------

    async def create(self, msg: ConflictDetected) -> bool:
        """Store a detected conflict and hold its path; False if it is known already."""
        fields = {
            "id": msg.conflict_id, "connector_id": msg.connector_id,
            "connector_name": msg.connector_name, "path": msg.path,
            "source": msg.source.model_dump_json(), "scaidrive": msg.scaidrive.model_dump_json(),
            "source_version": msg.source_version.model_dump_json(), "policy": msg.policy,
            "state": "open", "detected_at": msg.detected_at.isoformat(),
        }
        flat = [x for kv in fields.items() for x in kv]
        held = self._held(msg.connector_id)
        old = text(await self.r.hget(held, msg.path))
        if self._cluster:
            return await self._create_in_steps(msg, flat, old)
        created = await self._create(
            keys=[self._record(msg.conflict_id), self._list(msg.connector_id), held,
                  self._record(old or msg.conflict_id)],
            args=[msg.conflict_id, msg.path, msg.detected_at.timestamp(), old or "", *flat])
        return bool(created)

    async def _create_in_steps(self, msg: ConflictDetected, flat: list[str],
                               old: str | None) -> bool:
        """`create` where the record and the connector's keys are in different slots."""
        created = bool(await self._create_record(keys=[self._record(msg.conflict_id)],
                                                 args=flat))
        held = self._held(msg.connector_id)
        if not created:  # known; a crash may have stopped its first delivery before the hold
            if await self.r.hget(self._record(msg.conflict_id), "state") == "open":
                await self.r.hsetnx(held, msg.path, msg.conflict_id)
            return False
        await self.r.hset(self._list(msg.connector_id), msg.conflict_id,
                          str(msg.detected_at.timestamp()))
        if old and old != msg.conflict_id:
            await self._transition(keys=[self._record(old)],
                                   args=["open", "state", "superseded",
                                         "superseded_by", msg.conflict_id])
        await self.r.hset(held, msg.path, msg.conflict_id)
        return True

    async def resolve(self, conflict_id: str, winner: str, resolved_by: str,
                      automatic: bool = False) -> tuple[bool, dict | None]:
        """open -> resolved. (True, record) for the one caller that won; else (False, record
        as it is: resolved by someone else, superseded, or None if unknown)."""
        found = await self._transition(
            keys=[self._record(conflict_id)],
            args=["open", "state", "resolved", "winner", winner, "resolved_by", resolved_by,
                  "resolved_at", _now(), "automatic", "1" if automatic else "0"])
        return found == "open", await self.get(conflict_id)

    async def supersede(self, conflict_id: str, reason: str,
                        from_state: str = "open") -> tuple[bool, dict | None]:
        """`from_state` -> superseded (a side changed since detection; "resolved": the decision
        turned out stale and is not applied): the path is released so the next run detects the
        conflict again with the current versions. (True, record) for the caller that won."""
        found = await self._transition(
            keys=[self._record(conflict_id)],
            args=[from_state, "state", "superseded", "superseded_at", _now(), "reason", reason])
        rec = await self.get(conflict_id)
        if found == from_state and rec:
            await self._unhold(keys=[self._held(rec["connector_id"])],
                               args=[rec["path"], conflict_id])
        return found == from_state, rec

    async def reopen(self, conflict_id: str, resolved_by: str) -> bool:
        """Undo a resolve whose decision could not be sent (only that same resolve's)."""
        key = self._record(conflict_id)
        async with self.r.pipeline(transaction=True) as p:
            await p.watch(key)
            state, by = await p.hmget(key, "state", "resolved_by")
            if state != "resolved" or by != resolved_by:
                return False
            p.multi()
            p.hset(key, "state", "open")
            p.hdel(key, "winner", "resolved_by", "resolved_at", "automatic")
            await p.execute()
        return True

    # --- once-only side effects ---------------------------------------------------------

    async def flagged(self, conflict_id: str, flag: str) -> bool:
        return await self.r.hget(self._record(conflict_id), flag) == "1"

    async def set_flag(self, conflict_id: str, flag: str) -> bool:
        """True if this call set it (False: set before, or no such record)."""
        return await self._flag(keys=[self._record(conflict_id)], args=[flag, "1"]) == 1

    async def claim(self, conflict_id: str, what: str, ttl_s: float) -> str | None:
        """A short lease on a side effect (an email, an event), so two deliveries of the same
        message handled at once do not both do it. The token to release it, or None."""
        token = secrets.token_hex(8)
        key = f"{self._record(conflict_id)}:claim:{what}"
        ok = await self.r.set(key, token, nx=True, px=int(ttl_s * 1000))
        return token if ok else None

    async def release(self, conflict_id: str, what: str, token: str) -> None:
        await self._release(keys=[f"{self._record(conflict_id)}:claim:{what}"], args=[token])

    # --- listing ------------------------------------------------------------------------

    async def list(self, connector_ids: Iterable[str], state: str | None = None,
                   limit: int = 100) -> list[dict]:
        """The connectors' conflicts, newest first, optionally in one state."""
        scored: list[tuple[float, str]] = []
        for cid in connector_ids:
            listed = text_hash(await self.r.hgetall(self._list(cid)))
            scored += [(float(s), i) for i, s in listed.items()]
        ids = [i for _s, i in sorted(scored, reverse=True)]
        out: list[dict] = []
        for start in range(0, len(ids), READ_BATCH):
            async with self.r.pipeline(transaction=False) as p:
                for i in ids[start:start + READ_BATCH]:
                    p.hgetall(self._record(i))
                raws = await p.execute()
            out += [decode(r) for r in raws if r and (state is None or r.get("state") == state)]
            if len(out) >= limit:
                break
        return out[:limit]
