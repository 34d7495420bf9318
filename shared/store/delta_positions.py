"""Where a delta-capable source's incremental listing resumes (SharePoint's
`@odata.deltaLink`) and the items it knew then. A family of `Store` (`Store.delta_positions`).

Key layout (prefix = SCAIDRIVE_NAMESPACE; one connector's keys, tagged by it in cluster mode):

  {ns}:delta:{cid}       the saved delta position (a URL)
  {ns}:delta_full:{cid}  when the position's items were last enumerated in full (seconds since
                         1970, as text); a position saved before it was kept reads as listed
                         in full at its first read, and is saved so (the clock starts then)
  {ns}:items:{cid}       hash item id -> item known at that position, packed (`pack_item`):
                         the folders, and only the files the index ({ns}:index:{cid}) does
                         not vouch for (shared/sources/sharepoint/delta_listing.py); the
                         rest are rebuilt from the index, which the listing reads a page at
                         a time (`DeltaCursor.index_pages`)
  {ns}:enum:{cid}        hash: where a full enumeration under way stands ("link": the page's
                         link that follows the last page kept, nextLink or, once the last is
                         in, deltaLink; "of": the drive's id), so that a scan killed midway
                         goes on from there (`DeltaCursor.enumeration`); gone with the
                         position's next save
  {ns}:enum_items:{cid}  hash item id -> packed item: what the enumeration's pages gave so far
  {ns}:items_staged:{cid}:{token}  hash item id -> packed item: one save's changed items,
                         written a batch at a time, then applied to {ns}:items:{cid} by one
                         script (`save`); left by a save that died, it expires in an hour

An item (shared/sources/sharepoint/delta.py's compact dict) is kept in fields joined by "|", a
character SharePoint refuses in names, the name last (it may hold anything):

  root      "."
  tombstone "~"   (an indexed file the listing no longer has)
  folder    "/" parent "|" name
  package   "+" parent "|" name
  file      size (base 36) "|" mtime "|" content tag "|" owner e-mail "|" parent "|" name
            the mtime in seconds, base 36, when whole (Graph's are), else ns in base 36 + "N"
            (no base-36 digit); "" = None for the tag, the owner and the parent

Before, the ns form ended in "n", itself a base-36 digit: one whole-second mtime in 36 ended in
it too (1796464319 s is "tpkgqn"), read back as ns (a time in 1970's first second), so that its
file never matched its index record and stayed in the position for good. A value ending in "n"
still reads: as ns where the number before the "n" is at least `LEGACY_NS_FROM` (a seconds
form's stays far below it for a million years), else as whole seconds (only an ns form within
1970's first 17 minutes would be misread).

and as its JSON when it does not fit that (a "|" in another field, an empty string, a key not
listed above), like every value written before (both read). The parent is its id as Graph
gives SharePoint's ("01" + 32 base-32 characters: 20 bytes) as "*" + those bytes in url-safe
base 64 (28 characters; `short_id`), an id that begins with "*" as "*" + itself, others as
they are. The keys stay whole ids: shortening them would cost a base-32 conversion per item on
every read of the position (a library's every item, each run), where a parent's is done once
per folder. A file of a real library costs about 110 characters instead of the JSON's 175: a
size class less in Redis's allocator (bench/bench_index_memory.py).
"""
from __future__ import annotations

import asyncio
import json
import secrets
import time
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar

from shared.store.binary_records import GRAPH_ID, b36, graph_id, graph_id_bytes
from shared.store.replies import text, text_hash
from shared.store.state import State
from shared.sync.folders import is_folder
from shared.sync.model import (
    TOMBSTONE,
    DeltaCursor,
    DeltaItem,
    IndexedFile,
    IndexRecord,
    file_item,
    folder_ids,
)

T = TypeVar("T")
# A position's save, closing: the staged items (`save`) into the items, those removed out, the
# link and the age set, what a full enumeration kept gone. Atomic: a scanner killed before it
# leaves the position saved before, whole.
# KEYS: items, staged items, delta, delta_full, enum, enum_items
# ARGV: the link ("": none), the age ("": as it is), the ids removed...
APPLY_STAGED = """
local cursor = "0"
repeat
  local page = redis.call("HSCAN", KEYS[2], cursor, "COUNT", 500)
  cursor = page[1]
  if #page[2] > 0 then redis.call("HSET", KEYS[1], unpack(page[2])) end
until cursor == "0"
for i = 3, #ARGV, 500 do
  redis.call("HDEL", KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
if ARGV[1] ~= "" then redis.call("SET", KEYS[3], ARGV[1]) else redis.call("DEL", KEYS[3]) end
if ARGV[2] ~= "" then redis.call("SET", KEYS[4], ARGV[2]) end
redis.call("DEL", KEYS[2], KEYS[5], KEYS[6])
return 1
"""
WRITE_BATCH = 1000  # items per HSET / HDEL
STAGED_TTL_S = 3600  # a save's staged items, left by a scan that died while saving
PAGE_WAIT_S = 300.0  # for a page of the index (a Redis outage is retried meanwhile)
# An mtime kept as base 36 + "n" (before "N") is ns from this size up, else whole seconds.
LEGACY_NS_FROM = 10**12
_FILE_KEYS = frozenset("npsmto")
_FOLDER_KINDS = {"f": "/", "k": "+"}
_KIND_OF = {"/": "f", "+": "k"}


def short_id(item_id: str) -> str:
    """How a parent id is kept; `long_id` reads it back."""
    if GRAPH_ID.fullmatch(item_id):
        return "*" + urlsafe_b64encode(graph_id_bytes(item_id)).decode()[:27]
    return "*" + item_id if item_id[:1] == "*" else item_id


def long_id(kept: str) -> str:
    if kept[:1] != "*":
        return kept
    if kept[1:2] == "*":
        return kept[1:]
    return graph_id(urlsafe_b64decode(kept[1:] + "="))


def pack_item(item: dict, kept: dict[str, str] | None = None) -> str:
    """The stored form of one compact item (`unpack_item` reads it back equal). `kept`: the
    parents' stored forms so far (one conversion per folder, not per item)."""
    keys = item.keys()
    if keys == {"r"} and item["r"] == 1:
        return "."
    if item == TOMBSTONE:
        return "~"
    if len(keys) == 3 and "n" in keys and "p" in keys:
        kind = next(iter(keys - {"n", "p"}))
        if kind in _FOLDER_KINDS and item[kind] == 1 and _fits(item["p"]) and \
                isinstance(item["n"], str):
            return f"{_FOLDER_KINDS[kind]}{_parent(item['p'], kept)}|{item['n']}"
    elif keys == _FILE_KEYS and _is_int(item["s"]) and _is_int(item["m"]) and \
            all(_fits(item[k]) for k in "top") and isinstance(item["n"], str):
        secs, ns = divmod(item["m"], 10**9)
        mtime = b36(secs) if not ns else b36(item["m"]) + "N"
        return "|".join((b36(item["s"]), mtime, item["t"] or "", item["o"] or "",
                         _parent(item["p"], kept), item["n"]))
    return json.dumps(item)


def unpack_item(raw: str, parents: dict[str, str | None] | None = None) -> dict:
    """`parents`: the parent ids read so far (one conversion per folder, not per item)."""
    if raw[0] == "{":
        return json.loads(raw)
    if raw == ".":
        return {"r": 1}
    if raw == "~":
        return dict(TOMBSTONE)
    if raw[0] in _KIND_OF:
        parent, name = raw[1:].split("|", 1)
        return {"n": name, "p": _parent_id(parent, parents), _KIND_OF[raw[0]]: 1}
    size, mtime, tag, owner, parent, name = raw.split("|", 5)
    return {"n": name, "p": _parent_id(parent, parents), "s": int(size, 36),
            "m": _mtime_ns(mtime),
            "t": tag or None, "o": owner or None}


def _mtime_ns(kept: str) -> int:
    if kept[-1] == "N":
        return int(kept[:-1], 36)
    if kept[-1] == "n" and abs(ns := int(kept[:-1], 36)) >= LEGACY_NS_FROM:
        return ns  # written before "N": an ns form (a whole second's is far smaller)
    return int(kept, 36) * 10**9


def _parent_id(kept: str, parents: dict[str, str | None] | None) -> str | None:
    return _converted(kept, parents, long_id) if kept else None


def _parent(item_id: str | None, kept: dict[str, str] | None) -> str:
    return _converted(item_id, kept, short_id) if item_id else ""


def _converted(item_id: str, done: dict | None, convert: Callable[[str], str]) -> str:
    """`convert(item_id)`, remembered in `done` (a folder's id is every child's parent)."""
    if done is None:
        return convert(item_id)
    if item_id not in done:
        done[item_id] = convert(item_id)
    return done[item_id]


def _fits(value: object) -> bool:
    """A field that packs: None, or a string that is neither "" nor holds "|"."""
    return value is None or (isinstance(value, str) and value != "" and "|" not in value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def _next_page(pages: AsyncIterator[dict[str, IndexRecord]]
                     ) -> dict[str, IndexRecord] | None:
    return await anext(pages, None)


class DeltaPositions:
    def __init__(self, state: State) -> None:
        self.state = state
        self.r = state.r
        self._apply_staged = state.r.register_script(APPLY_STAGED)

    async def cursor(self, cid: str) -> DeltaCursor:
        """The saved position, and the index's files (`DeltaCursor.index_pages`): what rebuilds
        the files the position left out, read a page at a time as the listing goes."""
        async with self.r.pipeline(transaction=False) as p:  # one connector: one slot
            p.get(self.state.key("delta", cid))
            p.get(self.state.key("delta_full", cid))
            p.hgetall(self.state.key("items", cid))
            link, full_at, items = await p.execute()
        raw = text_hash(items)
        parents: dict[str, str | None] = {}
        loop = asyncio.get_running_loop()
        return DeltaCursor(text(link), {k: unpack_item(v, parents) for k, v in raw.items()},
                           float(full_at) if full_at is not None else
                           time.time() if link is not None else None,
                           index_pages=partial(self._pages_in_thread, cid, loop),
                           enumeration=KeptEnumeration(self, cid, loop))

    def _pages_in_thread(self, cid: str, loop: asyncio.AbstractEventLoop
                         ) -> Iterator[dict[str, IndexedFile]]:
        """The index's files by item id, a page of records at a time (never all at once), for
        a listing running in a thread (the scan's walk) while `loop` serves Redis. HSCAN may
        send a record twice: the scan's working set keeps a path once (`ScanStore`)."""
        if asyncio._get_running_loop() is loop:
            raise RuntimeError("the index is read page by page from a thread, not the loop")
        pages = self.state.index_pages(cid)
        while (records := asyncio.run_coroutine_threadsafe(
                _next_page(pages), loop).result(PAGE_WAIT_S)) is not None:
            yield {rec.file_id: IndexedFile(path, rec.size, rec.mtime_ns, rec.content_tag,
                                            rec.principal)
                   for path, rec in records.items()
                   if rec.file_id is not None and not is_folder(path)}

    async def save(self, cid: str, old: DeltaCursor, new: DeltaCursor,
                   acted: Mapping[str, IndexRecord] | None = None) -> None:
        """Write only what changed since `old` (as `cursor` read it), and the new position:
        an incremental run costs as much as its changes, not as the library. `acted`: the
        records of the indexed paths the run published a change for (`DeltaCursor.stored`).

        The changed items go a batch at a time to a staging hash, which one script then
        applies with the rest (the items removed, the link, the age; what a full enumeration
        kept goes): atomic as one transaction was, but what is held is a batch, where a first
        sync's position held every packed item and the transaction's buffer of them at once
        (~600 B a file beside the listing's ~480)."""
        stored = new.stored(acted or {})
        changed = [k for k, v in stored.items() if old.items.get(k) != v]
        removed = [k for k in old.items if k not in stored]
        # This save's own: one a scan that died while saving left (or another scanner's, one
        # presumed dead) is never applied, and expires.
        staged = self.state.key("items_staged", cid, secrets.token_hex(8))
        kept: dict[str, str] = {}
        for i in range(0, len(changed), WRITE_BATCH):
            async with self.r.pipeline(transaction=False) as p:  # one slot: one round trip
                p.hset(staged, mapping={k: pack_item(stored[k], kept)
                                        for k in changed[i:i + WRITE_BATCH]})
                p.expire(staged, STAGED_TTL_S)
                await p.execute()
        await self._apply_staged(
            keys=[self.state.key("items", cid), staged,
                  *(self.state.key(k, cid) for k in ("delta", "delta_full", "enum", "enum_items"))],
            args=[new.link or "", "" if new.full_at is None else repr(new.full_at), *removed])

    async def enumeration(self, cid: str, of: str) -> tuple[str, dict[str, DeltaItem]] | None:
        """Where a full enumeration of `of` stands (`keep_page`): the link to follow on and
        the items so far; None if none of `of` is kept."""
        async with self.r.pipeline(transaction=False) as p:  # one connector: one slot
            p.hgetall(self.state.key("enum", cid))
            p.hgetall(self.state.key("enum_items", cid))
            meta, items = (text_hash(raw) for raw in await p.execute())
        if meta.get("of") != of or not meta.get("link"):
            return None
        parents: dict[str, str | None] = {}
        return meta["link"], {k: unpack_item(v, parents) for k, v in items.items()}

    async def keep_page(self, cid: str, of: str, link: str, packed: Mapping[str, str],
                        removed: list[str], first: bool) -> None:
        """One more page of a full enumeration of `of`, in one transaction: its items
        (`pack_item`'s), the ids it deleted, the link that follows it. `first`: what was kept
        before (another enumeration's) goes."""
        items = self.state.key("enum_items", cid)
        async with self.r.pipeline(transaction=True) as p:  # a page: at most 999 items
            if first:
                p.delete(items)
            if packed:
                p.hset(items, mapping={k: v for k, v in packed.items()})
            if removed:
                p.hdel(items, *removed)
            p.hset(self.state.key("enum", cid), mapping={"link": link, "of": of})
            await p.execute()

    async def keep_files(self, cid: str, records: Mapping[str, IndexRecord]) -> None:
        """Put the files of these index records in the saved position (before the records are
        dropped while the files stay: a rejected deletion in ScaiDrive of a two-way
        connector's files), so that the next run still lists them without a full listing of
        the library. A file the position already holds (a tombstone too) is left as it is; no
        position: the next run lists the library in full anyway."""
        items_key = self.state.key("items", cid)
        saved = text_hash(await self.r.hgetall(items_key))
        if not saved:
            return
        parents: dict[str, str | None] = {}
        folders = folder_ids({k: unpack_item(v, parents) for k, v in saved.items()
                              if v[:1] in "./+{"})  # no file's (one begins with its size)
        items = {rec.file_id: item for path, rec in records.items()
                 if rec.file_id is not None and rec.file_id not in saved
                 and (item := file_item(path, rec, folders)) is not None}
        if items:
            kept: dict[str, str] = {}
            await self.r.hset(items_key, mapping={k: pack_item(v, kept) for k, v in items.items()})

    async def forget(self, cid: str) -> None:
        """The connector points at another library: its next run enumerates from scratch."""
        await self.r.delete(*(self.state.key(k, cid) for k in
                              ("delta", "delta_full", "items", "enum", "enum_items")))


class KeptEnumeration:
    """A connector's `EnumerationProgress`, kept by `DeltaPositions`, for a listing whose
    event loop (the source's, in another thread) is not `loop`, which serves Redis: each call
    runs there, awaited without blocking the listing's loop."""

    def __init__(self, positions: DeltaPositions, cid: str,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._positions, self._cid, self._loop = positions, cid, loop

    async def resume(self, of: str) -> tuple[str, dict[str, DeltaItem]] | None:
        return await self._on_loop(self._positions.enumeration(self._cid, of))

    async def keep(self, of: str, link: str, put: Mapping[str, DeltaItem],
                   removed: Iterable[str], first: bool = False) -> None:
        kept: dict[str, str] = {}  # packed here: the listing's thread, not Redis's loop
        packed = {k: pack_item(v, kept) for k, v in put.items()}
        await self._on_loop(self._positions.keep_page(self._cid, of, link, packed,
                                                      list(removed), first))

    async def _on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        if asyncio.get_running_loop() is self._loop:
            return await work
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))
