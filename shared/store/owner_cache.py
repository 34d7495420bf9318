"""The identity service's directory answers, kept in Redis: the owner decided for a source
principal, so a directory (LDAP) is asked once per principal, mapping version and import of
ScaiDrive's users, not per file, and the last answer stands in while the directory is down.

Key layout ({ns} = SCAIDRIVE_NAMESPACE):

  {ns}:idcache:{cid}:{version}:{users}:{principal}
                                             JSON Owner, EX the identity service's cache time:
                                             the answer under that mapping version and users'
                                             version (shared/store/users.py)
  {ns}:idlast:{cid}:{principal}              JSON Owner, no expiry: the last answer, whatever
                                             the version (used, marked degraded, in an outage)
"""
from __future__ import annotations

import redis.asyncio as aioredis

from shared.contracts import Owner
from shared.store.replies import text


class OwnerCache:
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self._r = redis
        self._ns = namespace

    def _cached(self, cid: str, version: int, users: int, principal: str) -> str:
        return f"{self._ns}:idcache:{cid}:{version}:{users}:{principal}"

    def _last(self, cid: str, principal: str) -> str:
        return f"{self._ns}:idlast:{cid}:{principal}"

    async def cached(self, cid: str, version: int, users: int, principal: str) -> Owner | None:
        """The directory's answer under this mapping version and users' version, while it is
        fresh."""
        raw = text(await self._r.get(self._cached(cid, version, users, principal)))
        return Owner.model_validate_json(raw) if raw else None

    async def last_known(self, cid: str, principal: str) -> Owner | None:
        """The last answer for the principal, however old (the directory is down)."""
        raw = text(await self._r.get(self._last(cid, principal)))
        return Owner.model_validate_json(raw) if raw else None

    async def remember(self, cid: str, version: int, users: int, principal: str, owner: Owner,
                       ttl_s: int) -> None:
        """Keep a fresh answer (for `ttl_s`) and make it the last known, in one round trip."""
        payload = owner.model_dump_json()
        async with self._r.pipeline(transaction=False) as p:
            p.set(self._cached(cid, version, users, principal), payload, ex=ttl_s)
            p.set(self._last(cid, principal), payload)
            await p.execute()
