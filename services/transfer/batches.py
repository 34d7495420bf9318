"""Apply a `TransferBatch`: small files moved by one worker, several in flight, each through the
same `Transfers.apply` as a job alone, their outcomes written to Redis a flush at a time.

- Before the first file: one round trip reads the connector, its pause flag, the share and every
  file's index record (`BatchRecords.context`).
- A file the index already holds at the batch's version (a redelivered batch) is done: skipped
  without a request to the source or the bucket, and not counted twice (the run's done set).
- A permanent failure is that file's failure, with its path and cause; the rest go on. A
  transient one (a server busy, a connection dropped): the rest go on and are recorded, then
  the batch is raised, so the broker redelivers it (backoff, a delivery limit, dead letter) and
  the redelivery does only what is left.
- Pause (the worker's held flags, refreshed twice a second, or a flush finds the flag) or
  credentials refused: no further file starts; those in flight finish and are recorded; the
  batch is parked untouched (shared/app/held_work.py) and, resumed, skips what was done.
- Throttles (services/transfer/throttle.py): each file holds a transfer slot of its connector
  while it moves (waiting for one), and its bytes go at the connector's bandwidth; outside the
  connector's sync window no further file starts and the batch is parked as when paused.
- Outcomes flush every FLUSH_FILES files or FLUSH_S seconds, so a run's counters move per file
  while a batch is under way; one flush is one script call.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from opentelemetry import trace

from services.transfer.throttle import OutsideWindow, Throttle
from shared.app.held_work import HeldWatch, park
from shared.app.run_lifecycle import OUTCOMES, close_run, lease_kept, stop_on_auth_failure
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.contracts import ChangeKind, Transfer, TransferBatch, TransferJob
from shared.errors import SyncError
from shared.observability import metrics, telemetry
from shared.store.batch_records import FileOutcome
from shared.store.state import Failure, IndexRecord, JobContext
from shared.sync.model import same_content

log = logging.getLogger(__name__)
tracer = trace.get_tracer("scaidrive.transfer")
FLUSH_FILES = 100
FLUSH_S = 1.0
FAILURE_STAGES = {ChangeKind.DELETED: "delete", ChangeKind.MOVED: "move"}


class Worker(Protocol):
    """What a batch needs of the transfer worker (handlers.Transfers)."""
    rt: Runtime
    shares: dict[str, str]
    throttle: Throttle
    watch: HeldWatch  # the held flags of the connectors with a batch in progress here

    async def apply(self, c: Connector, job: TransferJob, ctx: JobContext) -> tuple: ...


def already_done(t: Transfer, known: IndexRecord | None) -> bool:
    """Does the index show this file's work done (by an earlier delivery of the batch)?"""
    if t.kind in (ChangeKind.CREATED, ChangeKind.MODIFIED):
        return known is not None and t.version is not None and same_content(t.version, known)
    if t.kind is ChangeKind.DELETED:
        return known is None  # the object goes first, the index entry last
    return False


class BatchRun:
    """One delivery of one batch."""

    def __init__(self, transfers: Worker, batch: TransferBatch):
        self.t = transfers
        self.rt = transfers.rt
        self.batch = batch
        self.pending: list[tuple[FileOutcome, Failure | None]] = []
        self.flushed_at = time.monotonic()
        self.lock = asyncio.Lock()
        self.stop = False  # paused or credentials refused: start nothing more
        self.retry: BaseException | None = None  # the first transient failure
        self.usage_delta = 0  # bytes this batch added to the share so far (for the quota)
        self.job: TransferJob | None = None  # the first file's job, copied for the others

    async def run(self) -> None:
        rt, b = self.rt, self.batch
        guess = self.t.shares.get(b.connector_id)
        ctx = await rt.state.batches.context(b.connector_id, [x.path for x in b.transfers], guess)
        c = ctx.connector
        if c is None:
            return  # connector deleted: its queued work is dropped
        if ctx.held:
            await park(rt, c.id)
        share = ctx.share
        if guess != c.target_share:  # its first work here, or its target changed
            self.t.shares[c.id] = c.target_share
            share = await rt.state.share(c.target_share)
        with tracer.start_as_current_span("transfer batch", attributes={
                "connector.id": c.id, "run.id": b.run_id, "files": len(b.transfers)}) as span:
            todo = []
            for x in b.transfers:
                if already_done(x, ctx.known.get(x.path)):
                    self.pending.append((FileOutcome(x.job_id, {"files_skipped": 1}), None))
                else:
                    todo.append(x)
            span.set_attribute("files.already_done", len(b.transfers) - len(todo))
            gate = asyncio.Semaphore(rt.settings.transfer_concurrency)

            async def one(x: Transfer) -> None:
                async with gate:
                    if self.stop or self.t.watch.held(c.id):
                        self.stop = True
                        return
                    try:
                        async with self.t.throttle.file(c, b.run_id, patience_s=None):
                            await self.file(c, x, ctx.known.get(x.path), share, span)
                    except OutsideWindow:
                        self.stop = True  # the rest waits, parked, for the window to open
                    except Exception as exc:  # Redis down: the batch is tried again
                        self.retry = self.retry or exc

            with self.t.watch.watching(c.id):
                self.t.watch.note(c.id, ctx.held)
                async with lease_kept(rt, c.id, b.run_id):
                    await asyncio.gather(*(one(x) for x in todo))
            await self.flush(c.id, c.target_share)
        log.debug("batch done", extra={"connector_id": c.id, "run_id": b.run_id,
                                       "files": len(b.transfers)})
        if self.stop:
            await park(rt, b.connector_id)  # a resumed batch skips what was done
        if self.retry is not None:
            raise self.retry

    async def file(self, c: Connector, x: Transfer, known: IndexRecord | None, share: dict | None,
                   span: trace.Span) -> None:
        job = self.job_of(c.id, x)
        if share is not None:
            share = share | {"usage_bytes": share["usage_bytes"] + self.usage_delta}
        # Files in flight hold their room in the quota: the next file's check counts them.
        reserved = _growth(x, known)
        self.usage_delta += reserved
        try:
            outcome, nbytes, *indexed = await self.t.apply(c, job, JobContext(
                c, False, known, share))
        except SyncError as exc:
            self.usage_delta -= reserved
            if not exc.permanent:
                self.retry = self.retry or exc
                return
            if exc.cause == "auth_failed":  # not this file's fault: hold the connector
                self.stop = True
                await stop_on_auth_failure(self.rt, c, self.batch.run_id, str(exc))
                return
            telemetry.record_error(span, exc)  # type, cause, frames: never the path
            span.set_status(trace.StatusCode.ERROR, exc.cause)
            await self.done(c.id, c.target_share, FileOutcome(x.job_id, {"files_errored": 1}),
                            Failure(path=x.path, stage=FAILURE_STAGES.get(x.kind, "transfer"),
                                    cause=exc.cause, message=str(exc), run_id=job.run_id))
            return
        except Exception as exc:  # S3 or Redis down, or a bug: the batch is tried again
            self.usage_delta -= reserved
            self.retry = self.retry or exc
            return
        self.usage_delta -= reserved
        counts = {OUTCOMES[outcome]: 1} | ({"bytes_transferred": nbytes} if nbytes else {})
        entry = indexed[0] if indexed else None
        if entry is not None:
            self.usage_delta += entry.usage_delta
        await self.done(c.id, c.target_share, FileOutcome(x.job_id, counts, entry))

    def job_of(self, cid: str, x: Transfer) -> TransferJob:
        """`x` as the job it is of this batch's run: a copy of the batch's first (pydantic's
        `model_construct` per file walked every field's default, and `dict(x)` raised and
        caught an AttributeError asking the model for `keys`)."""
        if self.job is None:
            self.job = TransferJob.model_construct(connector_id=cid, run_id=self.batch.run_id,
                                                   **x.__dict__)
            return self.job
        return self.job.model_copy(update=x.__dict__)

    async def done(self, cid: str, share: str, outcome: FileOutcome,
                   failure: Failure | None = None) -> None:
        self.pending.append((outcome, failure))
        if len(self.pending) >= FLUSH_FILES or time.monotonic() - self.flushed_at >= FLUSH_S:
            await self.flush(cid, share)

    async def flush(self, cid: str, share: str) -> None:
        """Write what finished since the last flush. Failures first (a worker killed between
        the two writes records a failure twice rather than never)."""
        async with self.lock:
            taken, self.pending = self.pending, []
            self.flushed_at = time.monotonic()
            if taken:
                await self._record(cid, share, taken)

    async def _record(self, cid: str, share: str,
                      taken: list[tuple[FileOutcome, Failure | None]]) -> None:
        rt, run_id = self.rt, self.batch.run_id
        await rt.state.add_failures(cid, [f for _, f in taken if f])
        got = await rt.state.batches.record(cid, run_id, rt.settings.lease_ttl_s, share,
                                            [o for o, _ in taken])
        self.t.watch.note(cid, got.held)
        if got.held:
            self.stop = True
        for name, n in got.counts.items():
            if name == "bytes_transferred":
                metrics.transferred_bytes.add(n, {"connector.id": cid})
            else:
                metrics.files.add(n, {"connector.id": cid, "outcome": _outcome(name)})
        if got.closing:
            await close_run(rt, cid, run_id, claimed=True)


def _growth(x: Transfer, known: IndexRecord | None) -> int:
    """Bytes a file's upload would add to its share (what the quota check counts)."""
    if x.version is None or x.kind not in (ChangeKind.CREATED, ChangeKind.MODIFIED,
                                           ChangeKind.REPAIRED):
        return 0
    return x.version.size - (known.size if known else 0)


def _outcome(counter: str) -> str:
    return next((o for o, name in OUTCOMES.items() if name == counter), counter)
