"""The one-way scan, streamed so that the scanner's memory follows a folder's width and the
run's changes, not the tree (docs/PERFORMANCE.md, target 6):

1. walk the source a folder at a time into Redis (`walk.walk_into`, `ScanStore`), while the
   bucket's sizes go there too;
2. read the listing back a chunk at a time with its index records and bucket sizes, have the
   pure decision decide it (`shared.sync.one_way.OneWayDecision.chunk`) and publish; new paths
   wait inside the decision (they may be moves);
3. if some indexed path was not listed, read the index a chunk at a time and keep only those
   records (deletion and move candidates);
4. have the decision finish (`OneWayDecision.finish`: moves, deletions, withheld, held for an
   admin) and publish. `reconcile`, which the table tests call, is the same two calls;
5. abort the uploads a killed worker left that no job will take: for files the walk found
   gone, or listed with no change (`left_uploads`).
What is held is a folder's width, a chunk, and the run's changes; nothing is decided here.
"""
from __future__ import annotations

import asyncio
from collections.abc import Collection

from services.scanner.delete_guard import check_empty, hold_deletes
from services.scanner.left_uploads import abort_unused, left_before
from services.scanner.publish import ChangePublisher, ScanOutcome, settle
from services.scanner.walk import Walked, walk_into
from shared.app.run_lifecycle import approvals_used
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.sources.base import Source
from shared.store.scan_listing import ScanStore
from shared.sync.keys import path_of_key
from shared.sync.model import DeltaCursor, PrincipalCheck
from shared.sync.one_way import OneWayDecision


async def scan_one_way(rt: Runtime, c: Connector, run_id: str, source: Source,
                       cursor: DeltaCursor | None,
                       users_imported: PrincipalCheck | None = None) -> ScanOutcome:
    """`users_imported`: ScaiDrive's users were imported since the files were last labelled
    (`shared.sync.model.labels_outdated`)."""
    store = rt.state.scan_listing(c.id, rt.settings.scan_chunk)
    await store.drop()  # a redelivered scan starts over
    # The bucket's sizes do not depend on the walk: both at once, so that a no-change re-sync
    # of a big tree takes the longer of the two, not their sum.
    bucket = asyncio.ensure_future(_list_bucket(rt, c, store))
    try:
        walked = await walk_into(rt, c, run_id, source, cursor, store)
        await bucket
        left = await left_before(rt, c)
        out = await _decide(rt, c, run_id, source, store, walked, left, users_imported)
        await abort_unused(rt, c, walked.listing, store, left, out.published)
        return out
    finally:
        settle(bucket)
        await store.drop()


async def _list_bucket(rt: Runtime, c: Connector, store: ScanStore) -> None:
    objects = rt.storage.object_sizes(c.target_share, c.target_prefix)
    while page := await asyncio.to_thread(_page, objects, c.target_prefix, store.chunk):
        await store.add_target(page)


def _page(objects, prefix: str, chunk: int) -> dict[str, int]:
    page: dict[str, int] = {}
    for key, size in objects:
        path = path_of_key(prefix, key)
        if path is not None:
            page[path] = size
        if len(page) >= chunk:
            break
    return page


async def _decide(rt: Runtime, c: Connector, run_id: str, source: Source, store: ScanStore,
                  walked: Walked, left: Collection[str],
                  users_imported: PrincipalCheck | None) -> ScanOutcome:
    """Feed the listing to the pure decision a chunk at a time, publishing as it decides; then
    the vanished paths (read from the index only if some indexed path was not listed)."""
    listing = walked.listing
    indexed = await store.indexed()
    await check_empty(rt, c, run_id, listing.complete, walked.listed, len(listing.failures),
                      indexed)
    decision = OneWayDecision(indexed, listing, c.identity_version, users_imported)
    out = ScanOutcome(listed=walked.listed, errors=walked.errors, cursor=listing.cursor,
                      resynced=listing.resynced)
    publisher = ChangePublisher(rt, c, run_id, source, keep_acted=listing.cursor is not None,
                                watch=left)
    async for entries in store.listed_chunks(walked.listed):
        records, sizes = await store.lookup([e.path for e in entries])
        actions = decision.chunk(entries, records, sizes)
        await publisher.add(actions, records)
        out.jobs += len(actions)
    vanished = {} if decision.all_found else await store.vanished()
    approved = await rt.state.delete_holds.approved(c.id)
    plan = decision.finish(vanished, await store.target_sizes(vanished),
                           c.max_delete_percent / 100, approved)
    await approvals_used(rt, c.id, approved)  # spent once the run succeeds
    await hold_deletes(rt, c, run_id, dict.fromkeys(plan.deletes_held, "scaidrive"),
                       {"scaidrive": indexed})
    await publisher.add(plan.actions, vanished)
    await publisher.flush()
    out.bytes_to_send = publisher.bytes_to_send
    out.acted, out.published = publisher.acted, publisher.published
    out.jobs += len(plan.actions)
    out.unchanged = plan.unchanged
    out.withheld, out.held = len(plan.deletes_withheld), len(plan.deletes_held)
    return out
