"""The two-way scan: read the source's listing, the index and the bucket's etags, have the pure
`shared.sync.two_way.reconcile_two_way` (the function tests/unit/test_bisync.py calls) decide,
then carry it out: record the names set aside as failures, forget paths gone from both sides,
hold deletions for an admin, publish. Nothing is decided here. It decides over both whole trees
at once, so unlike the one-way scan it holds the listing, the index and the bucket's etags in
memory."""
from __future__ import annotations

import asyncio
import logging
import time
from functools import partial

from services.scanner.delete_guard import check_empty, hold_deletes
from services.scanner.publish import ChangePublisher, ScanOutcome, list_failures, settle
from shared.app.run_lifecycle import approvals_used
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.errors import ListingFailed, SyncError
from shared.sources.base import Source
from shared.sources.sharepoint.source import check_path as check_sharepoint_path
from shared.store.state import Failure
from shared.sync.folders import files_only, folder_record, is_folder
from shared.sync.keys import check_path, check_smb_name, path_of_key
from shared.sync.model import DeltaCursor, IndexRecord, Listing
from shared.sync.two_way import NameCheck, TwoWayPlan, reconcile_two_way

log = logging.getLogger(__name__)


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
                      len(listing.failures), files_only(records))
    plan, name_errors = await plan_two_way(rt, c, run_id, listing, records)
    publisher = ChangePublisher(rt, c, run_id, source)
    await publisher.add(plan.actions, records)
    await publisher.flush()
    return ScanOutcome(jobs=len(plan.actions), listed=len(listing.entries),
                       errors=len(failures) + name_errors, unchanged=plan.unchanged,
                       withheld=len(plan.deletes_withheld), held=len(plan.deletes_held),
                       cursor=listing.cursor, resynced=listing.resynced,
                       bytes_to_send=publisher.bytes_to_send)


async def plan_two_way(rt: Runtime, c: Connector, run_id: str, listing: Listing,
                       records: dict[str, IndexRecord]) -> tuple[TwoWayPlan, int]:
    """Read what the decision needs besides the listing and the index, decide (the pure
    `reconcile_two_way`), and record what it set aside: (the plan, per-file failures)."""
    target, failures = await asyncio.to_thread(_target_etags, rt, c, run_id)
    held = await rt.state.conflicts.held_paths(c.id)
    approved = await rt.state.delete_holds.approved(c.id)
    plan = reconcile_two_way(records, listing, target, frozenset(held),
                             c.max_delete_percent / 100, approved, c.identity_version,
                             _name_rule(c))
    failures += [Failure(path=p, stage="name", cause=e.cause, message=str(e), run_id=run_id)
                 for p, e in plan.unwritable.items()]
    await rt.state.add_failures(c.id, failures)
    for path in plan.forgotten():
        await rt.state.drop_index(c.id, path)  # gone from both sides: nothing to do but forget
    for folder in plan.recorded():  # an empty folder on both sides: remember it was synced
        await rt.state.put_index(c.id, folder, folder_record(time.time(),
                                                             c.identity_mapping.system_owner))
    await approvals_used(rt, c.id, approved)  # spent once the run succeeds
    await hold_deletes(rt, c, run_id, plan.held_sides(), {"source": len(listing.entries),
                                                          "scaidrive": files_only(target)})
    return plan, len(failures)


def _name_rule(c: Connector) -> NameCheck:
    """The names the connector's source can hold when ScaiDrive writes one back."""
    if c.kind == "sharepoint":
        return partial(check_sharepoint_path, for_write=True)
    return check_smb_name


def _target_etags(rt: Runtime, c: Connector, run_id: str) -> tuple[dict[str, str], list]:
    """ScaiDrive's side: path -> etag; a folder marker's path ends in "/" (the connector's
    own folder's marker is no folder of it). Keys that are not a path we could write back (made
    by other S3 clients) are failures, not pushes."""
    out, failures = {}, []
    for key, etag in rt.storage.etags(c.target_share, c.target_prefix).items():
        path = path_of_key(c.target_prefix, key)
        if not path:
            continue
        try:
            check_path(path[:-1] if is_folder(path) else path)
        except SyncError as exc:
            failures.append(Failure(path=path, stage="name", cause=exc.cause, message=str(exc),
                                    run_id=run_id))
            continue
        out[path] = etag
    return out, failures
