"""The two-way scan: both sides against the index's last-synced state (the pure decision is
`shared.sync.two_way`), then what only I/O can settle: names the source cannot hold, deletions held
for an admin, and paths gone from both sides. It decides over both whole trees at once, so
unlike the one-way scan it holds the listing, the index and the bucket's etags in memory."""
from __future__ import annotations

import asyncio
import logging

from shared.sync.two_way import Step, Synced, TwoWayPlan, reconcile_two_way
from shared.store.conflict_records import ConflictStore
from shared.config.connectors import Connector
from shared.contracts import ChangeKind
from shared.errors import ListingFailed, SyncError
from shared.sync.keys import case_collisions, check_path, check_smb_name, path_of_key
from shared.sync.one_way import Action, version_of
from shared.app.runtime import Runtime
from shared.sync.model import DeltaCursor, Listing
from shared.sources.base import Source
from shared.sources.sharepoint.source import check_path as check_sharepoint_path
from shared.store.state import Failure, IndexRecord
from services.scanner.publish import ScanOutcome, list_failures, publish_changes, relabels, \
    settle
from services.scanner.held_deletes import check_empty, hold_deletes

log = logging.getLogger(__name__)
_KIND = {Step.PUSH: ChangeKind.PUSHED, Step.DELETE_TARGET: ChangeKind.DELETED,
         Step.DELETE_SOURCE: ChangeKind.DELETED_IN_SCAIDRIVE,
         Step.BOTH_CHANGED: ChangeKind.BOTH_CHANGED}


async def scan_two_way(rt: Runtime, c: Connector, run_id: str, source: Source,
                       cursor: DeltaCursor | None) -> ScanOutcome:
    records_read = asyncio.ensure_future(rt.state.index(c.id))  # while the source lists
    try:
        listing = await asyncio.to_thread(source.list, cursor)
        root = next((f for f in listing.failures if f.path == ""), None)
        if root is not None:  # wrong password, share gone, server down: the run fails
            raise ListingFailed(root.cause, root.message)
        kept, failures = list_failures(c, listing, run_id)
        await rt.state.add_failures(c.id, failures)
        listing.entries = {e.path: e for e in kept}
        records = await records_read
    finally:
        settle(records_read)
    await check_empty(rt, c, run_id, listing.complete, len(listing.entries),
                      len(listing.failures), len(records))
    actions, name_errors, plan = await plan_two_way(rt, c, run_id, listing, records)
    actions += relabels(c, records, listing.entries, actions)
    await publish_changes(rt, c, run_id, source, actions, records)
    return ScanOutcome(jobs=len(actions), listed=len(listing.entries),
                       errors=len(failures) + name_errors, unchanged=plan.unchanged,
                       withheld=len(plan.deletes_withheld), held=len(plan.deletes_held),
                       cursor=listing.cursor, resynced=listing.resynced)


async def plan_two_way(rt: Runtime, c: Connector, run_id: str, listing: Listing,
                       records: dict[str, IndexRecord]) -> tuple[list[Action], int, TwoWayPlan]:
    """(the actions to publish, per-file failures recorded, the plan)."""
    target, failures = await asyncio.to_thread(_target_etags, rt, c, run_id)
    held = await ConflictStore(rt.state.r, rt.state.ns).held_paths(c.id)
    approved = await rt.state.approved_deletes(c.id)
    index = {p: Synced(rec.entry(), rec.etag or "") for p, rec in records.items()}
    plan = reconcile_two_way(index, listing, target, frozenset(held),
                             c.max_delete_percent / 100, approved)
    failures += _unpushable(c, plan, listing, run_id)
    await rt.state.add_failures(c.id, failures)
    for step, path in [s for s in plan.steps if s[0] is Step.FORGET]:
        await rt.state.drop_index(c.id, path)  # gone from both sides: nothing to do but forget
    await rt.state.clear_approved(c.id, approved)
    held = {path: "source" if step is Step.DELETE_SOURCE else "scaidrive"
            for step, path in plan.deletes_held}
    await hold_deletes(rt, c, run_id, held, {"source": len(listing.entries),
                                             "scaidrive": len(target)})
    actions = [_action(step, path, listing, target, records) for step, path in plan.steps
               if step is not Step.FORGET]
    return actions, len(failures), plan


def _action(step: Step, path: str, listing: Listing, target: dict[str, str],
            records: dict) -> Action:
    entry = listing.entries.get(path)
    version = version_of(entry) if entry else None
    if step is Step.PULL:
        kind = ChangeKind.MODIFIED if path in records else ChangeKind.CREATED
    else:
        kind = _KIND[step]
    return Action(kind, path, version, target_etag=target.get(path))


def _target_etags(rt: Runtime, c: Connector, run_id: str) -> tuple[dict[str, str], list]:
    """ScaiDrive's side: path -> etag. Keys that are not a path we could write back (made by
    other S3 clients) are failures, not pushes."""
    out, failures = {}, []
    for key, etag in rt.storage.etags(c.target_share, c.target_prefix).items():
        path = path_of_key(c.target_prefix, key)
        if path is None:
            continue
        try:
            check_path(path)
        except SyncError as exc:
            failures.append(Failure(path=path, stage="name", cause=exc.cause, message=str(exc),
                                    run_id=run_id))
            continue
        out[path] = etag
    return out, failures


def _unpushable(c: Connector, plan: TwoWayPlan, listing: Listing, run_id: str) -> list[Failure]:
    """New ScaiDrive names the source cannot hold leave the plan as per-file failures: never
    renamed behind the user's back, never lost (the object stays in ScaiDrive)."""
    new = [p for s, p in plan.steps if s is Step.PUSH and p not in listing.entries]
    problems = case_collisions(new, list(listing.entries))
    for path in new:
        try:
            if c.kind == "sharepoint":
                check_sharepoint_path(path, for_write=True)
            else:
                check_smb_name(path)
        except SyncError as exc:
            problems.setdefault(path, exc)
    plan.steps[:] = [s for s in plan.steps if not (s[0] is Step.PUSH and s[1] in problems)]
    return [Failure(path=p, stage="name", cause=e.cause, message=str(e), run_id=run_id)
            for p, e in sorted(problems.items())]
