"""What a streaming two-way scan reads back from its working set (`scan_listing.ScanStore`: the
listed entries and paths, ScaiDrive's file etags) and the connector's index, a chunk at a time,
as the three kinds of rows `shared.sync.two_way.TwoWayDecision` is fed: files only ScaiDrive
holds, listed files, and indexed paths neither side holds. A service gets one from the store
(`Store.two_way_scan(cid)`); the keys are ScanStore's.
"""
from __future__ import annotations

from collections.abc import AsyncIterator

from shared.store.replies import text, text_hash
from shared.store.scan_listing import ScanStore
from shared.sync.model import IndexRecord, SourceEntry


class TwoWayScanStore(ScanStore):
    async def n_etags(self) -> int:
        """How many files ScaiDrive holds (its folder markers aside)."""
        return await self.r.hlen(self.etags)

    async def records(self, paths: list[str]) -> dict[str, IndexRecord]:
        """The index records of these paths (those it holds)."""
        if not paths:
            return {}
        raw = await self.r.hmget(self.index, paths)
        return await self.codec.records(self.cid, {
            p: text(value) for p, value in zip(paths, raw, strict=True) if value})

    async def scaidrive_only(self) -> AsyncIterator[list[tuple[str, IndexRecord | None, str]]]:
        """Files ScaiDrive holds that the source did not list: (path, index record, etag),
        a chunk of the etags at a time (keyed by path: HSCAN may repeat one)."""
        done: set[str] = set()  # the rows given: the run's changes, not the tree
        cursor = 0
        while True:
            cursor, page = await self.r.hscan(self.etags, cursor, count=self.chunk)
            assert isinstance(page, dict)
            etags = text_hash(page)
            paths = [p for p in etags if p not in done]
            listed = await self.r.smismember(self.paths, paths) if paths else []
            unlisted = [p for p, there in zip(paths, listed, strict=True) if not there]
            if unlisted:
                done.update(unlisted)
                records = await self.records(unlisted)
                yield [(p, records.get(p), etags[p]) for p in unlisted]
            if not cursor:
                return

    async def listed_rows(self, n: int) -> AsyncIterator[
            list[tuple[SourceEntry, IndexRecord | None, str | None]]]:
        """The listed entries in walk order with their index records and etags, a chunk at a
        time (one round trip for both lookups)."""
        async for entries in self.listed_chunks(n):
            records, etags = await self.beside_index([e.path for e in entries], self.etags)
            yield [(e, records.get(e.path), etag)
                   for e, etag in zip(entries, etags, strict=True)]

    async def neither(self) -> AsyncIterator[list[tuple[str, IndexRecord]]]:
        """Indexed paths neither the listing nor ScaiDrive's files hold (folder entries
        included: their paths end in "/"), a chunk of the index at a time."""
        done: set[str] = set()
        cursor = 0
        while True:
            cursor, page = await self.r.hscan(self.index, cursor, count=self.chunk)
            assert isinstance(page, dict)
            chunk = {p: v for p, v in text_hash(page).items() if p not in done}
            paths = list(chunk)
            if paths:
                async with self.r.pipeline(transaction=False) as p:
                    p.smismember(self.paths, paths)
                    p.hmget(self.etags, paths)
                    listed, etags = await p.execute()
                gone = {path: chunk[path] for path, there, etag
                        in zip(paths, listed, etags, strict=True) if not there and etag is None}
                done.update(gone)
                if gone:
                    records = await self.codec.records(self.cid, gone)
                    yield sorted(records.items())
            if not cursor:
                return

