"""The end of a run, wherever it happens (last job done, empty scan, failed scan, dead letter).

Exactly one caller closes a run: the Lua scripts in `State` hand the 'closing' token out once.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from shared.app.runtime import Runtime
from shared.contracts import ConnectorAuthFailed, RunCounts, RunOutcome, SyncCompleted
from shared.observability import metrics, run_span
from shared.store.batch_records import FileOutcome
from shared.store.daily_counters import daily
from shared.store.state import Failure, Indexed

log = logging.getLogger(__name__)

# Counter deltas for each way a job can end.
OUTCOMES = {
    "transferred": "files_transferred",
    "moved": "files_moved",
    "deleted": "files_deleted",
    "errored": "files_errored",
    "skipped": "files_skipped",
    "relabeled": "files_relabeled",
    "conflict": "files_conflicted",
}


@asynccontextmanager
async def lease_kept(rt: Runtime, cid: str, run_id: str):
    """Renew the run's lease while a long step (a big scan, a big file) is under way, so the
    scheduler does not take a slow but healthy run for an abandoned one."""
    ttl = rt.settings.lease_ttl_s

    async def renew() -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            await rt.state.renew_lease(cid, run_id, ttl)

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()


async def finish_job(rt: Runtime, cid: str, run_id: str, job_id: str, outcome: str,
                     nbytes: int = 0, indexed: Indexed | None = None) -> None:
    counts = {OUTCOMES[outcome]: 1}
    if nbytes:
        counts["bytes_transferred"] = nbytes
    result = await rt.state.record_outcome(cid, run_id, job_id, rt.settings.lease_ttl_s,
                                           indexed, daily(rt.state, cid, counts), **counts)
    if result > 0:  # counted now (not a redelivery, not a stale run's job)
        metrics.files.add(1, {"connector.id": cid, "outcome": outcome})
        if nbytes:
            metrics.transferred_bytes.add(nbytes, {"connector.id": cid})
    if result == 2:
        await close_run(rt, cid, run_id, claimed=True)


async def fail_job(rt: Runtime, cid: str, run_id: str, job_id: str, failure: Failure) -> None:
    await rt.state.add_failure(cid, failure)
    await finish_job(rt, cid, run_id, job_id, "errored")


async def fail_jobs(rt: Runtime, cid: str, run_id: str,
                    failures: list[tuple[str, Failure]]) -> None:
    """Many jobs (job id, failure) that will never succeed (a dead-lettered batch): each one not
    finished yet is recorded as a failure and counted; the run closes if they were its last."""
    unfinished = await rt.state.batches.unfinished(run_id, [j for j, _ in failures])
    left = [(j, f) for (j, f), todo in zip(failures, unfinished, strict=True) if todo]
    if not left:
        return
    await rt.state.add_failures(cid, [f for _, f in left])
    got = await rt.state.batches.record(cid, run_id, rt.settings.lease_ttl_s, "-", [
        FileOutcome(j, {"files_errored": 1}) for j, _ in left])
    if got.closing:
        await close_run(rt, cid, run_id, claimed=True)


APPROVALS_FIELD = "approved_deletes_used"  # in the run's hash: the approvals its scan applied


async def approvals_used(rt: Runtime, cid: str, approved: frozenset[str]) -> None:
    """The run's scan let these approved deletions through: they are spent when the run
    closes successfully (`close_run`); a run that fails or ends partial leaves them approved
    for the next run. An approval given meanwhile is not among them: it waits for the next."""
    if approved:
        await rt.state.set_run_fields(cid, **{APPROVALS_FIELD: json.dumps(sorted(approved))})


async def close_run(rt: Runtime, cid: str, run_id: str, error: str | None = None,
                    claimed: bool = False) -> None:
    """Write the run's summary into the connector status, free the lease, tell the platform.
    `claimed`: the caller already holds the run's once-only closing token (from the Lua scripts)."""
    if not claimed and not await rt.state.claim_close(cid, run_id):
        return  # closed already, or a newer run holds the connector
    run = await rt.state.run(cid)
    finished = time.time()
    started = float(run.get("started_at", finished))
    counts = RunCounts(**{k: int(run.get(k, 0)) for k in RunCounts.model_fields})
    outcome: RunOutcome = "failed" if error else ("partial" if counts.files_errored else "success")
    if outcome == "success" and (spent := run.get(APPROVALS_FIELD)):
        await rt.state.delete_holds.clear_approved(cid, frozenset(json.loads(spent)))
    await rt.state.set_run_fields(cid, phase="finished", finished_at=finished, outcome=outcome,
                                  error=error or "")
    status = {"last_run_id": run_id, "last_outcome": outcome, "last_error": error or "",
              "last_finished_at": finished}
    if not error:
        status |= {"last_success_at": finished, "last_duration_s": round(finished - started, 3)}
        await rt.state.clear_status(cid, "stale")
    await rt.state.set_status(cid, **status)
    await rt.state.release_lease(cid, run_id)
    await rt.state.forget_done(run_id)
    metrics.run_duration.record(finished - started, {"connector.id": cid, "outcome": outcome})
    run_span.end(run, started, finished, {"connector.id": cid, "run.id": run_id,
                                          "run.reason": run.get("reason", ""),
                                          "run.outcome": outcome}, error)
    event = SyncCompleted(
        connector_id=cid, run_id=run_id, outcome=outcome, error=error,
        started_at=datetime.fromtimestamp(started, UTC),
        finished_at=datetime.fromtimestamp(finished, UTC),
        duration_s=round(finished - started, 3), counts=counts)
    await rt.broker.publish("events", "sync.completed", event)
    log.info("run %s of %s finished: %s %s", run_id, cid, outcome, counts.model_dump(),
             extra={"connector_id": cid, "run_id": run_id})


async def stop_on_auth_failure(rt: Runtime, c, run_id: str | None, message: str) -> None:
    """The source refused the credentials: hold the connector (no runs, queued jobs wait)
    until an admin updates them; tell the audit log and the platform once per incident."""
    if not await rt.state.mark_auth_failed(c.id, message):
        return
    await rt.state.hold_lease(c.id, None)  # the run in progress waits for the new secret
    event = ConnectorAuthFailed(connector_id=c.id, connector_name=c.name, kind=c.kind,
                                run_id=run_id, error=message)
    await rt.state.audit_event(event)
    await rt.broker.publish("events", "connector.auth_failed", event)
    log.warning("credentials refused: connector held until they are updated (%s)", message,
                extra={"connector_id": c.id, "run_id": run_id})
