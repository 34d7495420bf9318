"""Conflicts of two-way connectors, kept in Redis. Key layout ({ns} = SCAIDRIVE_NAMESPACE):

  {ns}:conflict:{id}               hash: the record (versions as JSON) and its once-only flags
  {ns}:conflict:{id}:claim:{what}  string, PX: who is doing a once-only side effect right now
  {ns}:conflicts:{cid}             hash id -> detected time (epoch s): the connector's conflicts
                                   (a hash rather than a sorted set, so the e2e secret scans,
                                   which read strings/hashes/lists/sets, cover it too)
  {ns}:conflicts:held:{cid}        hash path -> conflict id: paths runs must leave alone
  {ns}:conflicts:notify            zset conflict id -> when (epoch s): notices (the event, the
                                   admins' e-mail) still to send, and when to try next

A notice's record fields: `mail_message_id` (the e-mail's Message-ID, kept before it is sent:
a send repeated after a crash carries the same one), `notify_attempts` (failed tries) and,
once they ran out (or the detection was dead-lettered), `notify_failed` (the error) and
`notify_failed_at`; an admin's re-send clears them and schedules the notice again. A decision
whose RESOLVED job was dead-lettered shows `apply_failed` (the error) and `apply_failed_at`
until an admin asks for it to be applied again (`reapply_requested`); `decision_checked`: the
transfer worker found the decision current and may have begun writing it.

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
from shared.store import conflict_scripts as scripts
from shared.store.connection import is_cluster, tagger
from shared.store.replies import maybe_texts, text, text_hash, texts

STATES = ("open", "resolved", "superseded")
_JSON_FIELDS = ("source", "scaidrive", "source_version")
_FLAGS = ("mailed", "published_detected", "published_resolved", "published_superseded",
          "automatic", "decision_checked")
_LEASES = ("notice", "published_resolved")  # the side effects done under a lease
READ_BATCH = 200
_NOTICE_FIELDS = ("notify_failed", "notify_failed_at", "notify_attempts")


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
    for f in ("resolved_at", "resolved_by", "winner", "applied_at", "superseded_by",
              "mail_message_id", "notify_failed", "notify_failed_at", "apply_failed",
              "apply_failed_at"):
        out.setdefault(f, None)
    out["notify_attempts"] = int(out.get("notify_attempts") or 0)
    return out


class ConflictStore:
    def __init__(self, redis: aioredis.Redis, namespace: str):
        self.r = redis
        self.ns = namespace
        self._cluster = is_cluster(redis)
        self._tag = tagger(redis)  # {id} in cluster mode
        self._create = redis.register_script(scripts.CREATE)
        self._create_record = redis.register_script(scripts.CREATE_RECORD)
        self._transition = redis.register_script(scripts.TRANSITION)
        self._unhold = redis.register_script(scripts.UNHOLD)
        self._flag = redis.register_script(scripts.FLAG)
        self._release = redis.register_script(scripts.RELEASE)
        self._renew = redis.register_script(scripts.RENEW)
        self._message_id = redis.register_script(scripts.MESSAGE_ID)
        self._notice_failed = redis.register_script(scripts.NOTICE_FAILED)
        self._mark_failed = redis.register_script(scripts.MARK_FAILED)
        self._apply_failed = redis.register_script(scripts.APPLY_FAILED)

    def _record(self, conflict_id: str) -> str:
        return f"{self.ns}:conflict:{self._tag(conflict_id)}"

    def _list(self, connector_id: str) -> str:
        return f"{self.ns}:conflicts:{self._tag(connector_id)}"

    def _held(self, connector_id: str) -> str:
        return f"{self.ns}:conflicts:held:{self._tag(connector_id)}"

    def _lease(self, conflict_id: str, what: str) -> str:
        return f"{self._record(conflict_id)}:claim:{what}"

    @property
    def _notices(self) -> str:
        return f"{self.ns}:conflicts:notify"

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

    async def mark_apply_failed(self, conflict_id: str, error: str) -> bool:
        """The decision's job was dead-lettered: shown as `apply_failed` (False: the conflict
        is not a resolved, unapplied one: nothing to show)."""
        return bool(await self._apply_failed(keys=[self._record(conflict_id)],
                                             args=[error[:1000], _now()]))

    async def reapply_requested(self, conflict_id: str) -> None:
        await self.r.hdel(self._record(conflict_id), "apply_failed", "apply_failed_at")

    async def get(self, conflict_id: str) -> dict | None:
        raw = text_hash(await self.r.hgetall(self._record(conflict_id)))
        return decode(raw) if raw else None

    async def forget_connector(self, connector_id: str) -> None:
        """The connector is deleted: its conflicts, their claims and held paths go too."""
        ids = texts(await self.r.hkeys(self._list(connector_id)))
        keys = [self._list(connector_id), self._held(connector_id)]
        for cid in ids:
            keys += [self._record(cid)] + [self._lease(cid, w) for w in _LEASES]
        for i in range(0, len(keys), 500):
            await self.r.delete(*keys[i:i + 500])
        for i in range(0, len(ids), 500):
            await self.r.zrem(self._notices, *ids[i:i + 500])

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
        ok = await self.r.set(self._lease(conflict_id, what), token, nx=True,
                              px=int(ttl_s * 1000))
        return token if ok else None

    async def renew(self, conflict_id: str, what: str, token: str, ttl_s: float) -> bool:
        """Extend the lease for another `ttl_s`; False once it is not this holder's any more
        (it expired, and perhaps someone else took it)."""
        return await self._renew(keys=[self._lease(conflict_id, what)],
                                 args=[token, int(ttl_s * 1000)]) == 1

    async def release(self, conflict_id: str, what: str, token: str) -> None:
        await self._release(keys=[self._lease(conflict_id, what)], args=[token])

    async def mail_message_id(self, conflict_id: str, new_id: str) -> str | None:
        """The Message-ID of the conflict's e-mail: `new_id` the first time, then the one kept
        (a send repeated after a crash is recognisable as the same e-mail). None: no record."""
        return text(await self._message_id(keys=[self._record(conflict_id)], args=[new_id]))

    # --- notices still to send (the event, the admins' e-mail) ---------------------------

    async def notice_wanted(self, conflict_id: str, at: float) -> None:
        """Schedule the conflict's notices at `at` (epoch s), unless they are scheduled."""
        await self.r.zadd(self._notices, {conflict_id: at}, nx=True)

    async def notices_due(self, now: float, limit: int) -> list[str]:
        """Conflicts whose notices are due at `now`, the longest waiting first."""
        due = await self.r.zrangebyscore(self._notices, "-inf", now, start=0, num=limit)
        return [text(i) for i in due if isinstance(i, (str, bytes))]

    async def notices_pending(self) -> int:
        return int(await self.r.zcard(self._notices))

    async def notice_sent(self, conflict_id: str) -> None:
        """Every notice of the conflict went out: nothing left to schedule or to show."""
        await self.r.zrem(self._notices, conflict_id)
        await self.r.hdel(self._record(conflict_id), *_NOTICE_FIELDS)

    async def notice_failed(self, conflict_id: str, error: str, limit: int) -> int:
        """A try failed: the failures so far (-1: no such conflict). At `limit` the notice is
        given up on and shown as `notify_failed` until an admin asks for it again; below it,
        `notice_retry` schedules the next try."""
        n = int(await self._notice_failed(keys=[self._record(conflict_id)],
                                          args=[limit, error[:1000], _now()]))
        if n < 0 or n >= limit:
            await self.r.zrem(self._notices, conflict_id)
        return n

    async def notice_retry(self, conflict_id: str, at: float) -> None:
        """Try the notices again at `at`, if they are still scheduled."""
        await self.r.zadd(self._notices, {conflict_id: at}, xx=True)

    async def mark_notice_failed(self, conflict_id: str, error: str) -> bool:
        """Show the conflict's notice as failed (its detection was dead-lettered); False if
        there is no such conflict."""
        return bool(await self._mark_failed(keys=[self._record(conflict_id)],
                                            args=[error[:1000], _now()]))

    async def notice_requested(self, conflict_id: str, at: float) -> None:
        """An admin asks for the conflict's notices again: attempts and failure cleared, due at
        `at` (whatever was scheduled before)."""
        await self.r.hdel(self._record(conflict_id), *_NOTICE_FIELDS)
        await self.r.zadd(self._notices, {conflict_id: at})

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
