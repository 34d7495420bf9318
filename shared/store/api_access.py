"""Who holds a console session, and which addresses keep failing the admin API's token checks,
kept in Redis (services/api/routes/session.py decides what they mean).

Key layout ({ns} = SCAIDRIVE_NAMESPACE):

  {ns}:session:{sha256(id)}      JSON {name[, role]}, EX the session's lifetime: a console
                                 session; only a hash of the cookie's id is kept, so what Redis
                                 holds opens no session
  {ns}:authfail:{client ip}      counter, EX the window: failed token checks from that address
                                 in a fixed window (set at the first failure, never extended)
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import redis.asyncio as aioredis

from shared.store.replies import text


class ApiAccess:
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self._r = redis
        self._ns = namespace

    def _session(self, session_id: str) -> str:
        return f"{self._ns}:session:{hashlib.sha256(session_id.encode()).hexdigest()}"

    def _failures(self, client: str) -> str:
        return f"{self._ns}:authfail:{client}"

    # --- console sessions ---------------------------------------------------------------

    async def open_session(self, session_id: str, record: dict[str, str], ttl_s: int) -> None:
        await self._r.set(self._session(session_id), json.dumps(record), ex=ttl_s)

    async def session(self, session_id: str) -> dict[str, Any] | None:
        """The session's record, or None (unknown or expired)."""
        raw = text(await self._r.get(self._session(session_id)))
        if not raw:
            return None
        record: dict[str, Any] = json.loads(raw)
        return record

    async def close_session(self, session_id: str) -> None:
        await self._r.delete(self._session(session_id))

    # --- failed token checks, per client address ----------------------------------------

    async def failed_checks(self, client: str) -> int | None:
        """Failures counted in the address's current window; None if it has none open."""
        raw = text(await self._r.get(self._failures(client)))
        return None if raw is None else int(raw)

    async def window_left_s(self, client: str) -> int:
        """Seconds until the address's window ends (Redis TTL: negative if there is none)."""
        return int(await self._r.ttl(self._failures(client)))

    async def count_failed_check(self, client: str, window_s: int) -> tuple[int, int]:
        """Count a failure: (failures in the window so far, seconds left in it). The first
        failure opens the window; later ones do not extend it."""
        key = self._failures(client)
        async with self._r.pipeline(transaction=True) as p:
            p.set(key, 0, ex=window_s, nx=True)
            p.incr(key)
            p.ttl(key)
            _, count, ttl = await p.execute()
        return int(count), int(ttl)
