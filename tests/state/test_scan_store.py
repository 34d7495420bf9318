"""The streaming scan's working set against the real Redis."""
import json
from dataclasses import asdict

from shared.store.scan_listing import CHUNK, TTL_S
from shared.store.state import IndexRecord
from shared.sync.model import SourceEntry


def _record(size: int) -> IndexRecord:
    return IndexRecord(size=size, mtime_ns=5, file_id="9", owner="system", principal="S-1-5",
                       etag="e", synced_at=1.0)


async def test_listing_comes_back_in_walk_order_across_chunks(state):
    store = state.scan_listing("c1")
    entries = [SourceEntry(f"d/{i:05d}", i, 10 * i, None if i % 2 else str(i),
                           "tag" if i % 3 == 0 else None) for i in range(2 * CHUNK + 500)]
    await store.add_listed(entries[:700])
    await store.add_listed(entries[700:])
    back = [e async for chunk in store.listed_chunks(len(entries)) for e in chunk]
    assert back == entries
    assert 0 < await state.r.ttl(store.listed) <= TTL_S


async def test_vanished_is_every_indexed_path_not_listed(state):
    store = state.scan_listing("c1")
    indexed = {f"p{i}": _record(i) for i in range(2 * CHUNK + 300)}
    await state.r.hset(store.index, mapping={p: json.dumps(asdict(r))
                                             for p, r in indexed.items()})
    listed = [SourceEntry(p, 1, 1) for p in list(indexed)[::3]] + [SourceEntry("new", 1, 1)]
    await store.add_listed(listed)
    vanished = await store.vanished()
    assert vanished == {p: r for p, r in indexed.items() if p not in {e.path for e in listed}}
    assert await store.indexed() == len(indexed)


async def test_lookup_gives_records_and_sizes_where_they_exist(state):
    store = state.scan_listing("c1")
    await state.r.hset(store.index, "a", json.dumps(asdict(_record(3))))
    await store.add_target({"a": 3, "b": 7})
    assert await store.lookup(["a", "b", "c"]) == ({"a": _record(3)}, {"a": 3, "b": 7})
    assert await store.target_sizes(["b", "c"]) == {"b": 7}
    await store.drop()
    assert await state.r.exists(store.listed, store.paths, store.target) == 0
    assert await state.r.exists(store.index) == 1  # the index is not the scan's to drop
