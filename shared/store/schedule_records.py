"""What the scheduler needs without reading every connector every second: when each connector is
next due, which connectors have parked work, and the held flags of many connectors at once.
A family of `Store` (`Store.schedule`).

Key layout (prefix = SCAIDRIVE_NAMESPACE):

  {ns}:due        sorted set: connector id -> when its next run is due (unix seconds); a held
                  (paused, auth_failed) connector leaves it until it is resumed
  {ns}:parked     set of connector ids whose paused work waits in `{ns}.parked.{cid}` (RabbitMQ)

`next_due` itself stays in the connector's status hash (state.py), which the API shows: both are
written together by `State.set_status(next_due=...)`. Both keys span connectors, so in a Redis
Cluster they live in one slot of their own and are only ever touched by plain commands.
"""
from __future__ import annotations

from typing import cast

from shared.store.replies import Reply, maybe_texts, text_set, texts
from shared.store.state import State, held

DUE_PAGE = 200  # connectors started per scheduler tick at most (the rest on the next tick)


class ScheduleRecords:
    def __init__(self, state: State) -> None:
        self.state = state
        self.r = state.r

    def _due(self) -> str:
        return self.state.key("due")

    def _parked(self) -> str:
        return self.state.key("parked")

    async def due(self, now: float) -> list[str]:
        found = await self.r.zrangebyscore(self._due(), "-inf", now, 0, DUE_PAGE)
        return texts(cast(list[Reply], found))

    async def set_due(self, cid: str, at: float) -> None:
        await self.r.zadd(self._due(), {cid: at})

    async def unschedule(self, cid: str) -> None:
        """Held or deleted: not due until resumed (`wake`) or found again by the sweep."""
        await self.r.zrem(self._due(), cid)

    async def wake(self, cid: str, now: float) -> None:
        """Resumed: due again when its status says, at once if that has passed."""
        status = await self.state.status(cid)
        await self.set_due(cid, min(float(status.get("next_due") or now), now))

    async def missing(self, cids: list[str]) -> list[str]:
        """Of `cids`, those without a due time (new before this layout, or resumed while the
        scheduler was down): the sweep puts them back."""
        if not cids:
            return []
        scores = await self.r.zmscore(self._due(), cids)
        return [cid for cid, score in zip(cids, scores, strict=True) if score is None]

    async def held_many(self, cids: list[str]) -> dict[str, bool]:
        """Paused or refused, for each connector, in one round trip."""
        async with self.r.pipeline(transaction=False) as p:
            for cid in cids:
                p.hmget(self.state.key("status", cid), "paused", "auth_failed")
            rows = await p.execute()
        return {cid: held(*maybe_texts(row)) for cid, row in zip(cids, rows, strict=True)}

    async def mark_parked(self, cid: str) -> None:
        await self.r.sadd(self._parked(), cid)

    async def unmark_parked(self, cid: str) -> None:
        await self.r.srem(self._parked(), cid)

    async def parked(self) -> list[str]:
        return sorted(text_set(await self.r.smembers(self._parked())))

    async def forget(self, cid: str) -> None:
        """The connector is deleted."""
        async with self.r.pipeline(transaction=False) as p:
            p.zrem(self._due(), cid)
            p.srem(self._parked(), cid)
            await p.execute()
