"""Where a delta-capable source's incremental listing resumes (SharePoint's
`@odata.deltaLink`) and the items it knew then. A family of `Store` (`Store.delta_positions`).

Key layout (prefix = SCAIDRIVE_NAMESPACE; one connector's keys, tagged by it in cluster mode):

  {ns}:delta:{cid}       the saved delta position (a URL)
  {ns}:items:{cid}       hash item id -> JSON item known at that position
"""
from __future__ import annotations

import json

from shared.store.replies import text, text_hash
from shared.store.state import State
from shared.sync.model import DeltaCursor

WRITE_BATCH = 1000  # items per HSET / HDEL


class DeltaPositions:
    def __init__(self, state: State) -> None:
        self.state = state
        self.r = state.r

    async def cursor(self, cid: str) -> DeltaCursor:
        link = text(await self.r.get(self.state.key("delta", cid)))
        raw = text_hash(await self.r.hgetall(self.state.key("items", cid)))
        return DeltaCursor(link, {k: json.loads(v) for k, v in raw.items()})

    async def save(self, cid: str, old: DeltaCursor, new: DeltaCursor) -> None:
        """Write only what changed since `old`, and the new position, in one transaction: an
        incremental run costs as much as its changes, not as the library."""
        changed = {k: json.dumps(v) for k, v in new.items.items() if old.items.get(k) != v}
        removed = [k for k in old.items if k not in new.items]
        items = self.state.key("items", cid)
        async with self.r.pipeline(transaction=True) as p:
            keys = list(changed)
            for i in range(0, len(keys), WRITE_BATCH):
                p.hset(items, mapping={k: changed[k] for k in keys[i:i + WRITE_BATCH]})
            for i in range(0, len(removed), WRITE_BATCH):
                p.hdel(items, *removed[i:i + WRITE_BATCH])
            if new.link:
                p.set(self.state.key("delta", cid), new.link)
            else:
                p.delete(self.state.key("delta", cid))
            await p.execute()

    async def forget(self, cid: str) -> None:
        """The connector points at another library: its next run enumerates from scratch."""
        await self.r.delete(self.state.key("delta", cid), self.state.key("items", cid))
