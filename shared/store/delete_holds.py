"""Deletions held for an admin (a run that would delete more than the connector's share: both
modes) and the ones an admin approved, which the next successful run applies. A family of
`Store` (`Store.delete_holds`).

Key layout (prefix = SCAIDRIVE_NAMESPACE; each key is one connector's, tagged by it in cluster
mode):

  {ns}:held:{cid}        hash path -> side ("source" | "scaidrive"): the deletions held now
  {ns}:approved:{cid}    set of held deletions an admin approved (applied by the next run,
                         cleared once a run that applied them succeeds: run_lifecycle.py)
"""
from __future__ import annotations

from shared.store.replies import hset_mapping, text_hash, text_set
from shared.store.state import State


class DeleteHolds:
    def __init__(self, state: State) -> None:
        self.state = state
        self.r = state.r

    def _held(self, cid: str) -> str:
        return self.state.key("held", cid)

    def _approved(self, cid: str) -> str:
        return self.state.key("approved", cid)

    async def hold(self, cid: str, held: dict[str, str]) -> bool:
        """Replace the held set with this run's (path -> side); True if it changed (so the
        admin is told once per new set, not on every run while it waits)."""
        key = self._held(cid)
        before = await self.r.hgetall(key)
        if before == held:
            return False
        async with self.r.pipeline(transaction=True) as p:
            p.delete(key)
            if held:
                p.hset(key, mapping=hset_mapping(held))
            await p.execute()
        return bool(held)

    async def held(self, cid: str) -> dict[str, str]:
        return text_hash(await self.r.hgetall(self._held(cid)))

    async def counts(self, cids: list[str]) -> list[int]:
        """How many deletions each connector holds, in one round trip."""
        async with self.r.pipeline(transaction=False) as p:
            for cid in cids:
                p.hlen(self._held(cid))
            return await p.execute()

    async def settle(self, cid: str, approve: bool) -> dict[str, str]:
        """Take the held set away; approved paths are deleted by the next run, rejected ones
        are returned so the caller can restore them."""
        async with self.r.pipeline(transaction=True) as p:
            p.hgetall(self._held(cid))
            p.delete(self._held(cid))
            held, _ = await p.execute()
        if approve and held:
            await self.r.sadd(self._approved(cid), *held)
        return held

    async def approved(self, cid: str) -> frozenset[str]:
        return frozenset(text_set(await self.r.smembers(self._approved(cid))))

    async def clear_approved(self, cid: str, paths: frozenset[str]) -> None:
        if paths:
            await self.r.srem(self._approved(cid), *paths)
