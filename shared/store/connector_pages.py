"""The connectors a page at a time, for the API's listing (and which of some ids are gone): ids
sorted from `{ns}:connectors`, then only the page's records (`{ns}:connector:{cid}`, laid out
in state.py), each parsed once per stored version (`State.parse_connector`). A family of
`Store` (`Store.connector_pages`).

Reads go through a non-transactional pipeline of GETs rather than one MGET, so a page whose
connectors live in different slots of a Redis Cluster is read the same way.
"""
from __future__ import annotations

from shared.config.connector_model import Connector
from shared.store.replies import maybe_texts, text_set
from shared.store.state import State


class ConnectorPages:
    def __init__(self, state: State) -> None:
        self.state = state

    async def ids(self) -> list[str]:
        """Every connector id, sorted: the order pages follow (a cursor is the last id)."""
        return sorted(text_set(await self.state.r.smembers(self.state.key("connectors"))))

    async def records(self, ids: list[str]) -> list[Connector]:
        """The connectors of `ids` that still exist, in that order."""
        if not ids:
            return []
        async with self.state.r.pipeline(transaction=False) as p:
            for cid in ids:
                p.get(self.state.key("connector", cid))
            raws = maybe_texts(await p.execute())
        found = [self.state.parse_connector(cid, raw) for cid, raw in zip(ids, raws, strict=True)]
        return [c for c in found if c is not None]

    async def deleted_of(self, ids: list[str]) -> list[str]:
        """Those of `ids` that are no longer connectors."""
        if not ids:
            return []
        there = await self.state.r.smismember(self.state.key("connectors"), ids)
        return [cid for cid, found in zip(ids, there, strict=True) if not found]
