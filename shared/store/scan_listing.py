"""What a streaming one-way scan has seen, kept in Redis instead of the scanner's memory, so that
a scanner holds a folder's width (and the run's changes), not the tree. A service gets one from
the store (`Store.scan_listing(cid)`). It reads the connector's index ({ns}:index:{cid}, laid
out in shared/store/state.py, its values and labels in index_codec.py) beside its own keys, per
connector (a connector scans once at a time: its lease), dropped when the scan ends and
expiring anyway (in cluster mode {cid} is braced, as in state.py):

  {ns}:scan:{cid}:listed       list of JSON [path, size, mtime_ns, file_id, content_tag,
                               change_ns] (SourceEntry's fields in order), walk order
  {ns}:scan:{cid}:paths        set of the listed paths (is an indexed path still there?)
  {ns}:scan:{cid}:target       hash path -> size of the object in the bucket (one-way)
  {ns}:scan:{cid}:etags        hash path -> etag of the file's object (two-way; folder markers
                               stay with the scan: they are few)
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping

from redis.asyncio import Redis

from shared.store.connection import tagger
from shared.store.index_codec import IndexCodec
from shared.store.replies import hset_mapping, text_hash
from shared.sync.model import IndexRecord, SourceEntry

CHUNK = 1000  # entries per round trip, unless the scan asks for another (settings.scan_chunk)
TTL_S = 24 * 3600  # a scanner killed mid-scan leaves nothing for good
# ARGV: ttl, then path, size, row triples; KEYS: listed, paths. A row is pushed only for a new
# path. Returns the entries and the bytes added.
_ADD_LISTED = """
local added, bytes = 0, 0
for i = 2, #ARGV, 3 do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[1], ARGV[i + 2])
    added = added + 1
    bytes = bytes + tonumber(ARGV[i + 1])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return {added, bytes}
"""


class ScanStore:
    def __init__(self, r: Redis, ns: str, cid: str, chunk: int = CHUNK):
        self.r = r
        self.chunk = chunk
        tag = tagger(r)(cid)  # {cid} in cluster mode: the connector's slot, like state.py's keys
        self.listed = f"{ns}:scan:{tag}:listed"
        self.paths = f"{ns}:scan:{tag}:paths"
        self.target = f"{ns}:scan:{tag}:target"
        self.etags = f"{ns}:scan:{tag}:etags"
        self.index = f"{ns}:index:{tag}"
        self.cid = cid
        self.codec = IndexCodec(r, ns)  # the index's values and owner labels
        self._add_listed = r.register_script(_ADD_LISTED)

    async def drop(self) -> None:
        await self.r.delete(self.listed, self.paths, self.target, self.etags)

    async def add_listed(self, entries: list[SourceEntry],
                         once: bool = False) -> tuple[int, int]:
        """Keep these entries; returns how many were kept and their bytes (one round trip).
        `once`: a path listed before is not kept again (a listing streamed from the index may
        repeat one: HSCAN can), at some Redis CPU (~2.6 µs a file in a script, against ~1 µs
        pipelined)."""
        if not entries:
            return 0, 0
        rows = [json.dumps([e.path, e.size, e.mtime_ns, e.file_id, e.content_tag, e.change_ns])
                for e in entries]
        if once:
            added, size = await self._add_listed(keys=[self.listed, self.paths], args=[
                TTL_S, *(x for e, row in zip(entries, rows, strict=True)
                         for x in (e.path, e.size, row))])
            return int(added), int(size)
        async with self.r.pipeline(transaction=False) as p:
            p.rpush(self.listed, *rows)
            p.sadd(self.paths, *[e.path for e in entries])
            p.expire(self.listed, TTL_S)
            p.expire(self.paths, TTL_S)
            await p.execute()
        return len(entries), sum(e.size for e in entries)

    async def listed_among(self, paths: list[str]) -> set[str]:
        """Those of `paths` the walk listed (one round trip)."""
        if not paths:
            return set()
        found = await self.r.smismember(self.paths, paths)
        return {path for path, there in zip(paths, found, strict=True) if there}

    async def add_target(self, sizes: dict[str, int]) -> None:
        await self._add_to_hash(self.target, sizes)

    async def add_etags(self, etags: dict[str, str]) -> None:
        await self._add_to_hash(self.etags, etags)

    async def _add_to_hash(self, key: str, values: Mapping[str, int | str]) -> None:
        if values:
            async with self.r.pipeline(transaction=False) as p:
                p.hset(key, mapping=hset_mapping(values))
                p.expire(key, TTL_S)
                await p.execute()

    async def indexed(self) -> int:
        return await self.r.hlen(self.index)

    async def vanished(self) -> dict[str, IndexRecord]:
        """Index records of files whose path was not listed, read a chunk of the index at a
        time (keyed by path: HSCAN may repeat one). A two-way folder's entry (its path ends in
        "/", shared/sync/folders.py) is no file: a connector made one-way again ignores it."""
        out: dict[str, IndexRecord] = {}
        cursor = 0
        while True:
            cursor, page = await self.r.hscan(self.index, cursor, count=self.chunk)
            assert isinstance(page, dict)  # path -> record: a list only with NOVALUES
            chunk = text_hash(page)
            paths = list(chunk)
            listed = await self.r.smismember(self.paths, paths) if paths else []
            out.update(await self.codec.records(self.cid, {  # a folder's entry: two-way's
                p: chunk[p] for p, there in zip(paths, listed, strict=True)
                if not there and not p.endswith("/")}))
            if not cursor:
                return out

    async def listed_chunks(self, n: int) -> AsyncIterator[list[SourceEntry]]:
        """The listed entries in walk order, a chunk at a time."""
        for start in range(0, n, self.chunk):
            rows = await self.r.lrange(self.listed, start, start + self.chunk - 1)
            yield [SourceEntry(*json.loads(row)) for row in rows]

    async def lookup(self, paths: list[str]) -> tuple[dict[str, IndexRecord], dict[str, int]]:
        """The index records and bucket sizes of these paths, in one round trip."""
        if not paths:
            return {}, {}
        found, sizes = await self.beside_index(paths, self.target)
        return found, {path: int(size) for path, size in zip(paths, sizes, strict=True)
                       if size is not None}

    async def beside_index(self, paths: list[str],
                           key: str) -> tuple[dict[str, IndexRecord], list[str | None]]:
        """The index records of these paths (those it holds) and their values in the hash
        `key`, in one round trip."""
        async with self.r.pipeline(transaction=False) as p:
            p.hmget(self.index, paths)
            p.hmget(key, paths)
            records, values = await p.execute()
        found = await self.codec.records(self.cid, {
            path: raw for path, raw in zip(paths, records, strict=True) if raw})
        return found, values

    async def target_sizes(self, paths: Iterable[str]) -> dict[str, int]:
        paths = list(paths)
        out: dict[str, int] = {}
        for start in range(0, len(paths), self.chunk):
            part = paths[start:start + self.chunk]
            sizes = await self.r.hmget(self.target, part)
            out.update({p: int(s) for p, s in zip(part, sizes, strict=True) if s is not None})
        return out
