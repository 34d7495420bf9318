"""The ScaiDrive users imported through `PUT /api/v1/users`, kept in Redis: the `UserDirectory`
(shared/config/identity_mapping.py) the identity service and the API read today.

Key layout ({ns} = SCAIDRIVE_NAMESPACE):

  {ns}:users                     hash user id -> JSON User
  {ns}:users:version             integer, raised by every import after its users are written:
                                 a reader that sees it move reads the users again
"""
from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from shared.config.identity_mapping import User
from shared.store.replies import hset_mapping, maybe_texts, text, text_hash


class StoredUsers:
    """A `UserDirectory` over the imported users; `put` adds or replaces them."""

    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self._r = redis
        self._key = f"{namespace}:users"
        self._version = f"{namespace}:users:version"

    async def users(self) -> list[User]:
        stored = text_hash(await self._r.hgetall(self._key))
        return [User.model_validate_json(v) for v in stored.values()]

    async def get(self, user_id: str) -> User | None:
        raw = text(await self._r.hget(self._key, user_id))
        return User.model_validate_json(raw) if raw else None

    async def put(self, users: list[User]) -> int:
        """Add or replace `users`; returns how many were new or differed. Those are written,
        then the version raised (in that order: a reader that saw the new version reads the new
        users, on one Redis as on a cluster). An import that changes nothing (the same
        directory imported again every night) raises nothing: no connector relabels for it."""
        wanted = {u.id: u.model_dump_json() for u in users}
        if not wanted:
            return 0
        stored = maybe_texts(await self._r.hmget(self._key, list(wanted)))
        changed = {k: v for (k, v), was in zip(wanted.items(), stored, strict=True) if v != was}
        if changed:
            await self._r.hset(self._key, mapping=hset_mapping(changed))
            await self._r.incr(self._version)
        return len(changed)

    async def version(self) -> int:
        """The imports so far (0 before the first)."""
        return int(await self._r.get(self._version) or 0)

    def version_into(self, pipe: Pipeline) -> None:
        """Queue the read of `version` on a caller's pipeline (its reply: `parse_version`)."""
        pipe.get(self._version)

    @staticmethod
    def parse_version(raw: bytes | str | None) -> int:
        return int(raw or 0)
