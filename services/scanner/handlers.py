"""Scan: list the source, compare with the index and the bucket, publish one change per file."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace

from opentelemetry import trace

from services.scanner.one_way_scan import scan_one_way
from services.scanner.two_way_scan import scan_two_way
from shared.app.run_lifecycle import close_run, lease_kept, stop_on_auth_failure
from shared.app.runtime import Runtime
from shared.app.source_pool import Sources
from shared.config.active_directory import may_be_a_person
from shared.config.connector_model import Connector
from shared.contracts import ScanRequested
from shared.errors import SyncError
from shared.observability import telemetry
from shared.sources.base import Source
from shared.store.daily_counters import add_daily
from shared.store.state import Failure
from shared.sync.model import DeltaCursor

log = logging.getLogger(__name__)
tracer = trace.get_tracer("scaidrive.scanner")
DAY_S = 86_400.0


@dataclass
class ScanSources:
    """Sources kept between a connector's scans: one logon per config version, not per run."""

    pool: Sources
    scanning: set[str] = field(default_factory=set)


async def on_scan(rt: Runtime, msg: ScanRequested, sources: ScanSources) -> None:
    c = await rt.state.connector(msg.connector_id)
    run = await rt.state.run(msg.connector_id)
    if c is None:
        await asyncio.to_thread(sources.pool.drop, msg.connector_id)
    if c is None or run.get("run_id") != msg.run_id or run.get("phase") != "scanning":
        return  # connector deleted, or a stale / already scanned run (redelivery)
    with tracer.start_as_current_span("scan", attributes={
            "connector.id": c.id, "run.id": msg.run_id}) as span:
        source = await asyncio.to_thread(sources.pool.get, c)
        sources.scanning.add(c.id)
        try:
            async with lease_kept(rt, c.id, msg.run_id):
                await _scan(rt, c, msg.run_id, source, span)
        except SyncError as exc:
            telemetry.record_error(span, exc)
            span.set_status(trace.StatusCode.ERROR, exc.cause)
            await rt.state.add_failure(c.id, Failure(path="", stage="scan", cause=exc.cause,
                                                     message=str(exc), run_id=msg.run_id))
            if exc.cause == "auth_failed":
                await asyncio.to_thread(sources.pool.drop, c.id)  # never reuse a refused logon
                await stop_on_auth_failure(rt, c, msg.run_id, str(exc))
            await close_run(rt, c.id, msg.run_id, error=f"{exc.cause}: {exc}")
        finally:
            sources.scanning.discard(c.id)
            await asyncio.to_thread(sources.pool.trim, set(sources.scanning))


async def _scan(rt: Runtime, c: Connector, run_id: str, source: Source, span) -> None:
    # Delta-capable sources (SharePoint) resume from the position the last run saved.
    cursor = await rt.state.delta_positions.cursor(c.id) if c.kind == "sharepoint" else None
    listed_from, full = _listing_start(rt, c, run_id, cursor)
    # ScaiDrive's users imported since the files were labelled: the system owner's files are
    # labelled again (an owner only the new users match). A connector's first scan labels all.
    users_now, labelled = await rt.state.users_labelled(c.id)
    scan = scan_one_way if c.sync_mode == "one_way" else scan_two_way
    out = await scan(rt, c, run_id, source, listed_from,
                     may_be_a_person if labelled is not None and users_now != labelled else None)
    if out.cursor is not None and cursor is not None:
        # Saved only now: a scan that dies before this point replays the same changes.
        await rt.state.delta_positions.save(c.id, cursor, out.cursor, out.acted)
    if users_now != labelled:  # once: a file this listing missed keeps its label till it changes
        await rt.state.mark_users_labelled(c.id, users_now)
    where = {"connector_id": c.id, "run_id": run_id}
    if out.withheld:
        log.warning("%d deletions withheld: their folders could not be listed", out.withheld,
                    extra=where)
    span.set_attributes({"files.listed": out.listed, "jobs": out.jobs,
                         "deletes.withheld": out.withheld, "listing.resynced": out.resynced,
                         "listing.full_reconcile": full})
    if out.resynced:
        log.warning("delta position expired: full enumeration reconciled against the index",
                    extra=where)
    log.info("scan done: %d files listed, %d changes, %d unchanged", out.listed, out.jobs,
             out.unchanged, extra=where)
    await add_daily(rt.state, c.id, {"files_errored": out.errors})
    closing = await rt.state.scan_done(
        c.id, run_id, out.jobs, files_scanned=out.listed + out.errors,
        files_errored=out.errors, deletes_withheld=out.withheld, deletes_held=out.held,
        bytes_total=out.bytes_to_send)
    if closing == 2:
        await close_run(rt, c.id, run_id, claimed=True)


def _listing_start(rt: Runtime, c: Connector, run_id: str,
                   cursor: DeltaCursor | None) -> tuple[DeltaCursor | None, bool]:
    """Where the listing starts: the saved position, or the whole library when its last full
    listing is about `full_listing_days` old (what the change feed missed is then reconciled: a
    file it never reported deleted leaves ScaiDrive, one it never reported arrives). The
    position saved afterwards is diffed against `cursor` either way."""
    now = time.time()
    every_s = rt.settings.full_listing_days * DAY_S
    if cursor is None or not cursor.full_listing_due(every_s, now, c.id):
        return cursor, False
    log.info("full listing: the last was %.1f days ago; reconciling the change feed",
             (now - (cursor.full_at or now)) / DAY_S,
             extra={"connector_id": c.id, "run_id": run_id})
    # From scratch, with what the store gave to read the index and keep the pages.
    return replace(cursor, link=None, items={}, full_at=None), True
