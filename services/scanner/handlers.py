"""Scan: list the source, compare with the index and the bucket, publish one change per file."""
from __future__ import annotations

import asyncio
import hashlib
import logging

from opentelemetry import trace

from shared.connectors import Connector
from shared.contracts import ChangeKind, FileChanged, FileVersion, ScanRequested
from shared.errors import ListingFailed, SyncError
from shared.monitoring import add_daily
from shared.names import object_key, path_of_key
from shared.reconcile import Action, Plan, reconcile
from shared.runs import close_run, lease_kept, stop_on_auth_failure
from shared.runtime import Runtime
from shared.sources import Listing, Source, open_source
from shared.state import Failure
from services.scanner.deletes import check_empty, hold_deletes
from services.scanner.two_way import plan_two_way

log = logging.getLogger(__name__)
tracer = trace.get_tracer("scaidrive.scanner")
NEEDS_OWNER = (ChangeKind.CREATED, ChangeKind.MODIFIED, ChangeKind.REPAIRED,
               ChangeKind.BOTH_CHANGED)
PUBLISH_CHUNK = 100


def job_id(action: Action) -> str:
    """Deterministic per run and path: a redelivered scan republishes the same job ids."""
    return hashlib.sha1(f"{action.kind}\0{action.path}".encode()).hexdigest()[:20]


async def on_scan(rt: Runtime, msg: ScanRequested) -> None:
    c = await rt.state.connector(msg.connector_id)
    run = await rt.state.run(msg.connector_id)
    if c is None or run.get("run_id") != msg.run_id or run.get("phase") != "scanning":
        return  # connector deleted, or a stale / already scanned run (redelivery)
    with tracer.start_as_current_span("scan", attributes={
            "connector.id": c.id, "run.id": msg.run_id}) as span:
        source = open_source(c, rt.box, rt.settings)
        try:
            async with lease_kept(rt, c.id, msg.run_id):
                await _scan(rt, c, msg.run_id, source, span)
        except SyncError as exc:
            span.record_exception(exc)
            span.set_status(trace.StatusCode.ERROR, exc.cause)
            await rt.state.add_failure(c.id, Failure(path="", stage="scan", cause=exc.cause,
                                                     message=str(exc), run_id=msg.run_id))
            if exc.cause == "auth_failed":
                await stop_on_auth_failure(rt, c, msg.run_id, str(exc))
            await close_run(rt, c.id, msg.run_id, error=f"{exc.cause}: {exc}")
        finally:
            await asyncio.to_thread(source.close)


async def _scan(rt: Runtime, c: Connector, run_id: str, source: Source, span) -> None:
    # Delta-capable sources (SharePoint) resume from the position the last run saved.
    cursor = await rt.state.cursor(c.id) if c.kind == "sharepoint" else None
    # The index and the bucket's sizes do not depend on the source's listing: read all three at
    # once (a no-change re-sync of a big tree then takes the longest of them, not their sum).
    records_read = asyncio.ensure_future(rt.state.index(c.id))
    target_read = asyncio.ensure_future(asyncio.to_thread(_target_sizes, rt, c)) \
        if c.sync_mode == "one_way" else None
    try:
        listing = await asyncio.to_thread(source.list, cursor)
        root = next((f for f in listing.failures if f.path == ""), None)
        if root is not None:  # wrong password, share gone, server down: the run fails as a whole
            raise ListingFailed(root.cause, root.message)
        errors = await _record_list_failures(rt, c, run_id, listing)
        records = await records_read
        await check_empty(rt, c, run_id, listing, len(records))
        if target_read is None:
            actions, name_errors, plan = await plan_two_way(rt, c, run_id, listing, records)
            errors += name_errors
        else:
            plan = await _plan_one_way(rt, c, run_id, listing, records, await target_read)
            actions = plan.actions
    finally:
        for read in (records_read, target_read):
            if read is not None and read.done() and not read.cancelled():
                read.exception()  # a failure already raised elsewhere is not "never retrieved"
            elif read is not None:
                read.cancel()
    actions += _relabels(c, records, listing, actions)
    await _publish(rt, c, run_id, source, actions, records)
    if listing.cursor is not None and cursor is not None:
        # Saved only now: a scan that dies before this point replays the same changes.
        await rt.state.save_cursor(c.id, cursor, listing.cursor)
    if plan.deletes_withheld:
        log.warning("%d deletions withheld: their folders could not be listed",
                    len(plan.deletes_withheld), extra={"connector_id": c.id, "run_id": run_id})
    span.set_attributes({"files.listed": len(listing.entries), "jobs": len(actions),
                         "deletes.withheld": len(plan.deletes_withheld),
                         "listing.resynced": listing.resynced})
    if listing.resynced:
        log.warning("delta position expired: full enumeration reconciled against the index",
                    extra={"connector_id": c.id, "run_id": run_id})
    log.info("scan done: %d files listed, %d changes, %d unchanged", len(listing.entries),
             len(actions), plan.unchanged, extra={"connector_id": c.id, "run_id": run_id})
    await add_daily(rt.state, c.id, {"files_errored": errors})
    closing = await rt.state.scan_done(
        c.id, run_id, len(actions), files_scanned=len(listing.entries) + errors,
        files_errored=errors, deletes_withheld=len(plan.deletes_withheld),
        deletes_held=len(plan.deletes_held))
    if closing == 2:
        await close_run(rt, c.id, run_id, claimed=True)


async def _plan_one_way(rt: Runtime, c: Connector, run_id: str, listing: Listing,
                        records: dict, target: dict[str, int]) -> Plan:
    approved = await rt.state.approved_deletes(c.id)
    plan = reconcile(records, listing, target, c.max_delete_percent / 100, approved)
    await rt.state.clear_approved(c.id, approved)
    await hold_deletes(rt, c, run_id, dict.fromkeys(plan.deletes_held, "scaidrive"),
                       {"scaidrive": len(records)})
    return plan


def _relabels(c: Connector, records: dict, listing: Listing, actions: list) -> list[Action]:
    """Unchanged files labelled under an older identity mapping: new owner, same bytes."""
    stale = sorted(p for p, rec in records.items() if rec.identity_version != c.identity_version)
    busy = {a.path for a in actions} if stale else set()
    return [Action(ChangeKind.RELABELED, path, _version(records[path])) for path in stale
            if path in listing.entries and path not in busy]


def _version(rec) -> FileVersion:
    return FileVersion(size=rec.size, mtime_ns=rec.mtime_ns, file_id=rec.file_id,
                       content_tag=rec.content_tag)


async def _publish(rt: Runtime, c: Connector, run_id: str, source: Source,
                   actions: list[Action], records: dict) -> None:
    """Publish in chunks, looking owners up per chunk: transfers start while the rest of the
    owners (one SMB round trip each) are still being read."""
    await rt.broker.connector_queue("identity", c.id)  # so the changes have somewhere to go
    for start in range(0, len(actions), PUBLISH_CHUNK):
        chunk = actions[start:start + PUBLISH_CHUNK]
        owners = await asyncio.to_thread(
            source.owners, [a.path for a in chunk if a.kind in NEEDS_OWNER])
        events = [
            FileChanged(connector_id=c.id, run_id=run_id, job_id=job_id(a), kind=a.kind,
                        path=a.path, from_path=a.from_path, version=a.version,
                        owner_principal=owners.get(a.path, _principal(records, a.path)),
                        target_etag=a.target_etag)
            for a in chunk
        ]
        await rt.broker.publish_many("changes", [(c.id, e) for e in events])


def _principal(records: dict, path: str) -> str | None:
    rec = records.get(path)
    return rec.principal if rec else None


async def _record_list_failures(rt: Runtime, c: Connector, run_id: str, listing: Listing) -> int:
    """Folders that could not be read and names the target cannot hold are per-file failures;
    the bad names leave the listing (they were never synced, so nothing is deleted for them)."""
    failures = [Failure(path=f.path, stage="list", cause=f.cause, message=f.message,
                        run_id=run_id) for f in listing.failures]
    for path in list(listing.entries):
        try:
            object_key(c.target_prefix, path)
        except SyncError as exc:
            del listing.entries[path]
            failures.append(Failure(path=path, stage="name", cause=exc.cause,
                                    message=str(exc), run_id=run_id))
    await rt.state.add_failures(c.id, failures)
    return len(failures)


def _target_sizes(rt: Runtime, c: Connector) -> dict[str, int]:
    sizes = rt.storage.sizes(c.target_share, c.target_prefix)
    out = {}
    for key, size in sizes.items():
        path = path_of_key(c.target_prefix, key)
        if path is not None:
            out[path] = size
    return out
