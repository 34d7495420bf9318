"""The one-way scan, streamed so that the scanner's memory follows a folder's width and the
run's changes, not the tree (docs/PERFORMANCE.md, target 6):

1. walk the source a folder at a time into Redis (`ScanStore`), while the bucket's sizes go
   there too;
2. read the listing back a chunk at a time with its index records and bucket sizes, decide
   (`decide_listed`) and publish; new paths wait (they may be moves);
3. if some indexed path was not listed, read the index a chunk at a time and keep only those
   records (deletion and move candidates); match the new paths against them;
4. decide and publish the deletions (`decide_gone`), holding mass deletions for an admin.
What is held is a folder's width, a chunk, and the run's changes.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shared.config.connectors import Connector
from shared.contracts import ChangeKind
from shared.errors import ListingFailed
from shared.sync.keys import path_of_key
from shared.sync.one_way import Plan, decide_gone, decide_listed, hold_mass_deletes, \
    move_candidates
from shared.app.runtime import Runtime
from shared.store.scan_listing import CHUNK, ScanStore
from shared.sync.model import DeltaCursor, Listing, SourceEntry
from shared.sources.base import Source
from shared.sync.model import merge_flags
from services.scanner.publish import ScanOutcome, list_failures, publish_changes, relabels, \
    settle
from services.scanner.held_deletes import check_empty, hold_deletes


@dataclass
class Walked:
    listing: Listing = field(default_factory=Listing)  # flags and failures; entries in Redis
    listed: int = 0
    errors: int = 0


async def scan_one_way(rt: Runtime, c: Connector, run_id: str, source: Source,
                       cursor: DeltaCursor | None) -> ScanOutcome:
    store = ScanStore(rt.state.r, rt.state.ns, c.id)
    await store.drop()  # a redelivered scan starts over
    # The bucket's sizes do not depend on the walk: both at once, so that a no-change re-sync
    # of a big tree takes the longer of the two, not their sum.
    bucket = asyncio.ensure_future(_list_bucket(rt, c, store))
    try:
        walked = await _walk(rt, c, run_id, source, cursor, store)
        await bucket
        return await _decide(rt, c, run_id, source, store, walked)
    finally:
        settle(bucket)
        await store.drop()


async def _walk(rt: Runtime, c: Connector, run_id: str, source: Source,
                cursor: DeltaCursor | None, store: ScanStore) -> Walked:
    walked = Walked()
    parts = source.walk(cursor)
    batch: list[SourceEntry] = []
    try:
        while (part := await asyncio.to_thread(next, parts, None)) is not None:
            root = next((f for f in part.failures if f.path == ""), None)
            if root is not None:  # wrong password, share gone, server down: the run fails
                raise ListingFailed(root.cause, root.message)
            merge_flags(walked.listing, part)
            kept, failures = list_failures(c, part, run_id)
            await rt.state.add_failures(c.id, failures)
            walked.errors += len(failures)
            walked.listed += len(kept)
            batch += kept
            if len(batch) >= CHUNK:  # folders are often small: one round trip per CHUNK
                await store.add_listed(batch)
                batch = []
        await store.add_listed(batch)
    finally:
        _close(parts)
    return walked


def _close(parts) -> None:
    try:
        parts.close()
    except ValueError:
        pass  # still running in its thread (the scan was cancelled): it ends on its own


async def _list_bucket(rt: Runtime, c: Connector, store: ScanStore) -> None:
    objects = rt.storage.object_sizes(c.target_share, c.target_prefix)
    while page := await asyncio.to_thread(_page, objects, c.target_prefix):
        await store.add_target(page)


def _page(objects, prefix: str) -> dict[str, int]:
    page: dict[str, int] = {}
    for key, size in objects:
        path = path_of_key(prefix, key)
        if path is not None:
            page[path] = size
        if len(page) >= CHUNK:
            break
    return page


async def _decide(rt: Runtime, c: Connector, run_id: str, source: Source, store: ScanStore,
                  walked: Walked) -> ScanOutcome:
    listing = walked.listing
    indexed = await store.indexed()
    await check_empty(rt, c, run_id, listing.complete, walked.listed, len(listing.failures),
                      indexed)
    out = ScanOutcome(listed=walked.listed, errors=walked.errors, cursor=listing.cursor,
                      resynced=listing.resynced)
    # New paths wait until the vanished ones are known (a new path may be a move), unless
    # nothing was indexed: then every one is a create, and waiting would hold the tree.
    new: list[SourceEntry] = []
    found = 0  # listed paths the index holds: when all indexed are, nothing vanished
    async for entries in store.listed_chunks(walked.listed):
        records, sizes = await store.lookup([e.path for e in entries])
        found += len(records)
        if indexed:
            new += [e for e in entries if e.path not in records]
            entries = [e for e in entries if e.path in records]
        actions, unchanged = decide_listed(entries, records, sizes, {})
        actions += relabels(c, records, (e.path for e in entries), actions)
        out.unchanged += unchanged
        await publish_changes(rt, c, run_id, source, actions, records)
        out.jobs += len(actions)
    vanished = await store.vanished() if found < indexed else {}
    unreadable = [f.path for f in listing.failures]
    movable = move_candidates(vanished, unreadable) if listing.complete else {}
    moved_or_new, _ = decide_listed(new, {}, await store.target_sizes(vanished), movable)
    for action in moved_or_new:
        if action.kind is ChangeKind.MOVED:
            vanished.pop(action.from_path)
    plan = await _deletes(rt, c, run_id, sorted(vanished), unreadable, listing.complete, indexed)
    await publish_changes(rt, c, run_id, source, moved_or_new + plan.actions, vanished)
    out.jobs += len(moved_or_new) + len(plan.actions)
    out.withheld, out.held = len(plan.deletes_withheld), len(plan.deletes_held)
    return out


async def _deletes(rt: Runtime, c: Connector, run_id: str, gone: list[str],
                   unreadable: list[str], complete: bool, indexed: int) -> Plan:
    """Indexed paths neither listed nor moved: deleted, withheld (folder unreadable) or held
    for an admin (too many at once, unless approved)."""
    plan = Plan()
    plan.actions, plan.deletes_withheld = decide_gone(gone, unreadable, complete)
    approved = await rt.state.approved_deletes(c.id)
    plan = hold_mass_deletes(plan, indexed, c.max_delete_percent / 100, approved)
    await rt.state.clear_approved(c.id, approved)
    await hold_deletes(rt, c, run_id, dict.fromkeys(plan.deletes_held, "scaidrive"),
                       {"scaidrive": indexed})
    return plan
