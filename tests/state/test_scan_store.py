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


async def test_a_path_listed_twice_is_kept_and_counted_once(state):
    """A listing streamed from the index may send a file twice (HSCAN may repeat a record):
    one entry, one job, the run's progress counting it once; the first entry stays."""
    store = state.scan_listing("c1")
    first = [SourceEntry("a.txt", 3, 1), SourceEntry("b.txt", 5, 1)]
    assert await store.add_listed(first, once=True) == (2, 8)
    assert await store.add_listed([SourceEntry("b.txt", 9, 2), SourceEntry("c.txt", 7, 1),
                                   SourceEntry("c.txt", 7, 1)], once=True) == (1, 7)
    back = [e async for chunk in store.listed_chunks(3) for e in chunk]
    assert back == first + [SourceEntry("c.txt", 7, 1)]
    assert await store.listed_among(["a.txt", "c.txt", "d.txt"]) == {"a.txt", "c.txt"}


async def test_a_scan_reads_its_listing_in_the_chunk_it_asks_for(state):
    """settings.scan_chunk: the e2e stacks use a small one, so that their trees span chunks."""
    store = state.scan_listing("c1", chunk=7)
    entries = [SourceEntry(f"d/{i:02d}", i, i) for i in range(20)]
    await store.add_listed(entries)
    chunks = [chunk async for chunk in store.listed_chunks(len(entries))]
    assert [len(chunk) for chunk in chunks] == [7, 7, 6]
    assert [e for chunk in chunks for e in chunk] == entries


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


async def test_a_two_way_scan_reads_back_each_path_once_in_its_kind_of_row(state):
    """Files only ScaiDrive holds, listed files (with their records and etags), and indexed
    paths neither side holds: each path in exactly one kind of row, across several chunks."""
    store = state.two_way_scan("c1")
    n = 2 * CHUNK + 300
    indexed = {f"p{i:05d}": _record(i) for i in range(n)} | {"empty/": _record(0)}
    await state.r.hset(store.index, mapping={p: json.dumps(asdict(r))
                                             for p, r in indexed.items()})
    listed = [SourceEntry(f"p{i:05d}", 1, 1) for i in range(0, n, 2)] + [SourceEntry("new", 1, 1)]
    await store.add_listed(listed)
    etags = {f"p{i:05d}": f"e{i}" for i in range(0, n, 3)} | {"made-in-scaidrive": "m"}
    await store.add_etags(etags)
    only = [row async for rows in store.scaidrive_only() for row in rows]
    rows = [row async for chunk in store.listed_rows(len(listed)) for row in chunk]
    neither = [row async for chunk in store.neither() for row in chunk]
    listed_paths = {e.path for e in listed}
    assert sorted(only) == sorted((p, indexed.get(p), e) for p, e in etags.items()
                                  if p not in listed_paths)
    assert rows == [(e, indexed.get(e.path), etags.get(e.path)) for e in listed]
    assert sorted(neither) == sorted((p, r) for p, r in indexed.items()
                                     if p not in listed_paths and p not in etags)
    assert await store.n_etags() == len(etags)
    assert await store.records(["empty/", "nothing/"]) == {"empty/": _record(0)}
    await store.drop()
    assert await state.r.exists(store.etags) == 0
