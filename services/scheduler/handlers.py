"""When runs start, and how they end when nobody else can end them.

One run per connector at a time: a run holds the connector's lease in Redis (SET NX with an
expiry that progress renews), so two schedulers never start two runs, and a crashed run frees
the connector once its lease expires.
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import context as otel_context
from opentelemetry import trace

from shared.app.held_work import unpark_resumed
from shared.app.run_lifecycle import close_run, fail_job, fail_jobs
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector, next_due
from shared.config.sync_windows import in_window, next_open
from shared.contracts import (
    FileChanged,
    FileChanges,
    RunRequested,
    ScanReason,
    ScanRequested,
    TransferBatch,
    TransferJob,
    decode,
)
from shared.observability import run_span
from shared.store.daily_counters import STALE_PERIODS, is_stale, raise_flag
from shared.store.state import Failure

log = logging.getLogger(__name__)
LEASE_UNTIL_BEGUN_S = 30


async def start_run(rt: Runtime, c: Connector, reason: ScanReason) -> str | None:
    """Take the lease and emit the scan command; None when a run is already going."""
    run_id = uuid.uuid4().hex[:16]
    # Taken short until the run's record is written: a scheduler killed in between holds the
    # connector for seconds, not a whole lease (a finished run's lease is taken over at once).
    if not await rt.state.acquire_lease(c.id, run_id, min(LEASE_UNTIL_BEGUN_S,
                                                          rt.settings.lease_ttl_s)):
        return None
    # The root span of the run (a new trace, linked to what asked for it: an API request),
    # recorded when the run ends (shared/observability/run_span.py): every service's spans for
    # this run descend from it.
    ctx, kept = run_span.begin(trace.get_current_span().get_span_context())
    token = otel_context.attach(ctx)
    try:
        await rt.state.begin_run(c.id, run_id, reason, **kept)
        await rt.state.renew_lease(c.id, run_id, rt.settings.lease_ttl_s)
        try:
            await rt.broker.publish("commands", "scan", ScanRequested(
                connector_id=c.id, run_id=run_id, reason=reason))
        except Exception:
            await rt.state.release_lease(c.id, run_id)
            raise
        log.info("run started (%s)", reason, extra={"connector_id": c.id, "run_id": run_id})
    finally:
        otel_context.detach(token)
    return run_id


async def tick(rt: Runtime) -> None:
    """Start the runs that are due: only those connectors are read (the due set), so an idle
    tick costs one round trip however many connectors there are. Then parked work of resumed
    connectors goes back to its lanes."""
    now = time.time()
    due = await rt.state.schedule.due(now)
    if due:
        await _start_due(rt, due, now)
    await unpark_resumed(rt)


async def _start_due(rt: Runtime, due: list[str], now: float) -> None:
    """Start the due connectors' runs, oldest due first, while fewer than
    SCAIDRIVE_SCANS_WAITING_MAX scan commands wait for a scanner: the rest stay due and start
    on a later tick as the scanners catch up (admission: a run never waits out its lease in
    the scan queue). Deleted, held and out-of-window connectors take no room."""
    room = await scan_room(rt)
    at = datetime.fromtimestamp(now, UTC)
    for cid, (c, held) in zip(due, await rt.state.connectors_held(due), strict=True):
        if c is None or held:  # deleted; or paused, refused: not due until resumed
            await rt.state.schedule.unschedule(cid)  # (or the sweep finds it)
            continue
        if not in_window(c.sync_windows, at):  # outside its sync windows: due when one opens
            await rt.state.set_status(c.id, next_due=next_open(c.sync_windows, at).timestamp())
            continue
        if room <= 0:
            log.debug("scanners busy: due runs wait", extra={"connector_id": c.id})
            continue  # still due: a later tick starts it
        if await start_run(rt, c, "schedule") is not None:
            room -= 1
        # Due or not started (a run still going): the next slot comes from the schedule.
        following = next_due(c.schedule, at)
        await rt.state.set_status(c.id, next_due=following.timestamp())


async def scan_room(rt: Runtime) -> int:
    """How many more scan commands may be queued now."""
    waiting = (await rt.broker.depths(["scan"]))["scan"]
    return rt.settings.scans_waiting_max - waiting


async def sweep(rt: Runtime) -> dict[str, int]:
    """Every connector, on a slower beat (SCAIDRIVE_SCHEDULER_SWEEP_S): close runs whose lease
    expired without an end (crashed workers), flag stale connectors, and give a due time back to
    any connector without one that is not held (created before the due set, resumed while we
    were down).
    Returns the files each connector has waiting (for the queue gauges)."""
    now = time.time()
    connectors = await rt.state.connectors()
    snapshots = await rt.state.snapshots([c.id for c in connectors])
    unscheduled = set(await rt.state.schedule.missing([c.id for c in connectors]))
    waiting = {}
    for c, (status, run, lease) in zip(connectors, snapshots, strict=True):
        waiting[c.id] = rt.state.files_waiting(run)
        if run and run.get("phase") != "finished" and lease != run["run_id"]:
            await _close_abandoned(rt, c.id, run["run_id"])
        if status.get("paused") == "1" or status.get("auth_failed") == "1":
            continue  # held by an admin, or until its credentials are updated
        if status.get("stale") != "1" and is_stale(c, status, now):
            await _flag_stale(rt, c, status)
        if c.id in unscheduled:
            await rt.state.schedule.set_due(
                c.id, float(status.get("next_due") or c.created_at.timestamp()))
    await _keep_queued_runs(rt, waiting, snapshots, connectors)
    return waiting


async def _close_abandoned(rt: Runtime, cid: str, run_id: str) -> None:
    """A run whose lease ran out without an end. Every job counted: its closer died after it
    took the closing token and before it wrote the end, so the run ends as its counts say.
    Otherwise its workers died or stalled: it failed."""
    if not await rt.state.take_abandoned(cid, run_id, rt.settings.lease_ttl_s):
        return  # finished meanwhile, replaced, or another sweep closes it
    run = await rt.state.run(cid)
    total, done = int(run.get("jobs_total", -1)), int(run.get("jobs_done", 0))
    error = None if 0 <= total <= done else "run abandoned: no progress before its lease expired"
    await close_run(rt, cid, run_id, error=error, claimed=True)


async def _keep_queued_runs(rt: Runtime, waiting: dict[str, int], snapshots: list,
                            connectors: list[Connector]) -> None:
    """A run whose scan is done and whose files wait in the shared lanes behind other
    connectors' work makes no progress of its own, yet nothing of it is lost (its messages are
    in RabbitMQ): while the lanes hold messages, its lease is renewed, so it is not closed as
    abandoned however long the backlog. With the lanes empty, files still waiting are no
    longer queued anywhere: the lease runs out and the run is closed as before."""
    if not any(waiting.values()) or not sum((await rt.broker.lane_depths()).values()):
        return
    for c, (_status, run, lease) in zip(connectors, snapshots, strict=True):
        if waiting[c.id] and run.get("phase") == "transferring" and lease == run["run_id"]:
            await rt.state.renew_lease(c.id, run["run_id"], rt.settings.lease_ttl_s)


async def _flag_stale(rt: Runtime, c: Connector, status: dict) -> None:
    if await raise_flag(rt.state, c, "stale", "connector.stale",
                        last_success_at=status.get("last_success_at")):
        log.warning("no successful sync for %d schedule periods", STALE_PERIODS,
                    extra={"connector_id": c.id})


async def on_run_requested(rt: Runtime, msg: RunRequested, _raw=None) -> None:
    c = await rt.state.connector(msg.connector_id)
    if c is None or await rt.state.paused(c.id):
        return  # deleted or paused since the request: nothing to do
    if not in_window(c.sync_windows, datetime.now(UTC)):
        log.info("run requested outside the sync windows: not started",
                 extra={"connector_id": c.id})
        return
    if await start_run(rt, c, "manual") is None:
        log.info("run requested while one is going: coalesced", extra={"connector_id": c.id})


async def on_dead_letter(rt: Runtime, message: AbstractIncomingMessage) -> None:
    """A job that will never succeed still ends: record it as a failure so the run can close."""
    try:
        msg = decode(message.type, message.body)
    except Exception:
        return  # undecodable: kept in the operators' dead-letter queue, nothing to close
    headers = message.headers or {}
    reason = str(headers.get("x-error") or headers.get("x-first-death-reason") or "dead-lettered")
    if isinstance(msg, (FileChanged, TransferJob)):
        await fail_job(rt, msg.connector_id, msg.run_id, msg.job_id, Failure(
            path=msg.path, stage="transfer", cause="dead_lettered",
            message=f"gave up after repeated failures: {reason}", run_id=msg.run_id))
    elif isinstance(msg, (FileChanges, TransferBatch)):
        items = msg.changes if isinstance(msg, FileChanges) else msg.transfers
        await fail_jobs(rt, msg.connector_id, msg.run_id, [(x.job_id, Failure(
            path=x.path, stage="transfer", cause="dead_lettered",
            message=f"gave up after repeated failures: {reason}", run_id=msg.run_id))
            for x in items])
    elif isinstance(msg, ScanRequested):
        await close_run(rt, msg.connector_id, msg.run_id, error=f"scan failed: {reason}")

