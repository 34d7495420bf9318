"""The two-way scan, streamed like the one-way scan so that the scanner's memory follows a
folder's width and the run's changes, not the trees (docs/PERFORMANCE.md):

1. walk the source a folder at a time into Redis (`walk.walk_into`), while ScaiDrive's file etags
   go there too (its folder markers, few, stay here);
2. feed the pure decision (`shared.sync.two_way.TwoWayDecision`, the one `reconcile_two_way`
   and tests/unit/test_bisync.py use) a chunk at a time, publishing what it gives back: the
   files only ScaiDrive holds, then the listed files, then (if some indexed path was in
   neither) the paths only the index holds;
3. have it finish (moves, names the source cannot hold, deletions held for an admin, empty
   folders) and carry that out: record the names set aside as failures, forget paths gone from
   both sides, hold deletions, publish. Nothing is decided here.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from functools import partial

from services.scanner.delete_guard import check_empty, hold_deletes
from services.scanner.left_uploads import abort_unused, left_before
from services.scanner.publish import ChangePublisher, ScanOutcome, settle
from services.scanner.walk import Walked, walk_into
from shared.app.run_lifecycle import approvals_used
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.errors import SyncError
from shared.sources.base import Source
from shared.sources.sharepoint.source import check_path as check_sharepoint_path
from shared.store.scan_sides import TwoWayScanStore
from shared.store.state import Failure
from shared.sync.folders import folder_record, is_folder
from shared.sync.keys import check_path, check_smb_name, path_of_key
from shared.sync.model import DeltaCursor, IndexRecord, PrincipalCheck
from shared.sync.two_way import Decided, NameCheck, Step, TwoWayDecision


async def scan_two_way(rt: Runtime, c: Connector, run_id: str, source: Source,
                       cursor: DeltaCursor | None,
                       users_imported: PrincipalCheck | None = None) -> ScanOutcome:
    """`users_imported`: as `scan_one_way`'s."""
    store = rt.state.two_way_scan(c.id, rt.settings.scan_chunk)
    await store.drop()  # a redelivered scan starts over
    markers: list[str] = []
    bucket = asyncio.ensure_future(_list_bucket(rt, c, run_id, store, markers))
    try:
        walked = await walk_into(rt, c, run_id, source, cursor, store)
        name_errors = await bucket
        left = await left_before(rt, c)
        out = await _decide(rt, c, run_id, source, store, walked, markers, name_errors, left,
                            users_imported)
        await abort_unused(rt, c, walked.listing, store, left, out.published)
        return out
    finally:
        settle(bucket)
        await store.drop()


async def _list_bucket(rt: Runtime, c: Connector, run_id: str, store: TwoWayScanStore,
                       markers: list[str]) -> int:
    """ScaiDrive's side: file path -> etag into Redis, folder markers ("a/b/") into `markers`
    (the connector's own folder's marker is no folder of it). Keys that are not a path we
    could write back (made by other S3 clients) are failures, not pushes: how many."""
    objects = rt.storage.object_etags(c.target_share, c.target_prefix)
    failures = 0
    while page := await asyncio.to_thread(_page, objects, c.target_prefix, run_id, store.chunk):
        etags, bad = page
        markers += [p for p in etags if is_folder(p)]
        await store.add_etags({p: e for p, e in etags.items() if not is_folder(p)})
        await rt.state.add_failures(c.id, bad)
        failures += len(bad)
    return failures


def _page(objects, prefix: str, run_id: str,
          chunk: int) -> tuple[dict[str, str], list[Failure]] | None:
    etags: dict[str, str] = {}
    failures: list[Failure] = []
    for key, etag in objects:
        path = path_of_key(prefix, key)
        if not path:
            continue
        try:
            check_path(path[:-1] if is_folder(path) else path)
        except SyncError as exc:
            failures.append(_name_failure(path, exc, run_id))
            continue
        etags[path] = etag
        if len(etags) + len(failures) >= chunk:
            break
    return (etags, failures) if etags or failures else None


async def _decide(rt: Runtime, c: Connector, run_id: str, source: Source,
                  store: TwoWayScanStore, walked: Walked, markers: list[str],
                  name_errors: int, left: Collection[str],
                  users_imported: PrincipalCheck | None) -> ScanOutcome:
    listing = walked.listing
    n_target = await store.n_etags()
    candidates = [*markers, *(f + "/" for f in listing.empty_folders or ())]
    folders = await store.records(candidates)  # the folder entries that may travel
    indexed = await store.indexed()
    await check_empty(rt, c, run_id, listing.complete, walked.listed, len(listing.failures),
                      indexed - len(folders))
    approved = await rt.state.delete_holds.approved(c.id)
    decision = TwoWayDecision(listing, walked.listed, n_target, markers,
                              frozenset(await rt.state.conflicts.held_paths(c.id)),
                              c.max_delete_percent / 100, approved, c.identity_version,
                              _name_rule(c), users_imported)
    decision.indexed_folders(folders)
    run = _Publishing(rt, c, run_id, ChangePublisher(rt, c, run_id, source,
                                                     keep_acted=listing.cursor is not None,
                                                     watch=left))
    found = len(folders)
    async for rows in store.scaidrive_only():
        found += sum(1 for _, known, _ in rows if known is not None)
        await run.add(decision.scaidrive_only(rows), {p: r for p, r, _ in rows if r})
    async for listed in store.listed_rows(walked.listed):
        found += sum(1 for _, known, _ in listed if known is not None)
        await run.add(decision.listed(listed), {e.path: r for e, r, _ in listed if r})
    if found < indexed:  # some indexed path is in neither side's listing
        async for gone in store.neither():
            await run.add(decision.neither(gone), dict(gone))
    plan = decision.finish()
    failures = [_name_failure(p, e, run_id) for p, e in plan.unwritable.items()]
    await rt.state.add_failures(c.id, failures)
    await run.forget(plan.forgotten())
    for folder in plan.recorded():  # an empty folder on both sides: remember it was synced
        await rt.state.put_index(c.id, folder, folder_record(time.time(),
                                                             c.identity_mapping.system_owner))
    await approvals_used(rt, c.id, approved)  # spent once the run succeeds
    await hold_deletes(rt, c, run_id, plan.held_sides(), {"source": walked.listed,
                                                          "scaidrive": n_target})
    await run.publisher.add(plan.actions, decision.kept_records())
    await run.publisher.flush()
    return ScanOutcome(jobs=run.jobs + len(plan.actions), listed=walked.listed,
                       errors=walked.errors + name_errors + len(failures),
                       unchanged=plan.unchanged, withheld=len(plan.deletes_withheld),
                       held=len(plan.deletes_held), cursor=listing.cursor,
                       resynced=listing.resynced,
                       bytes_to_send=run.publisher.bytes_to_send, acted=run.publisher.acted,
                       published=run.publisher.published)


def _name_failure(path: str, exc: SyncError, run_id: str) -> Failure:
    """A name one side holds that the other cannot: a per-file failure, never a rename."""
    return Failure(path=path, stage="name", cause=exc.cause, message=str(exc), run_id=run_id)


class _Publishing:
    """What the decision gives back as it goes: published, or (gone from both sides)
    forgotten."""

    def __init__(self, rt: Runtime, c: Connector, run_id: str, publisher: ChangePublisher):
        self.rt, self.c, self.publisher = rt, c, publisher
        self.jobs = 0

    async def add(self, decided: Decided, records: Mapping[str, IndexRecord]) -> None:
        await self.publisher.add(decided.actions, records)
        self.jobs += len(decided.actions)
        await self.forget([p for step, p in decided.steps if step is Step.FORGET])

    async def forget(self, paths: list[str]) -> None:
        """Gone from both sides: nothing to do but forget them (one round trip)."""
        await self.rt.state.drop_index(self.c.id, *paths)


def _name_rule(c: Connector) -> NameCheck:
    """The names the connector's source can hold when ScaiDrive writes one back."""
    if c.kind == "sharepoint":
        return partial(check_sharepoint_path, for_write=True)
    return check_smb_name
