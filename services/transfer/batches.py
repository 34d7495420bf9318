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
- Small one-way uploads (`in_groups`) go to the job threads FILES_PER_HANDOFF at a time: a
  thread moves its group's files one after another, as `Transfers.apply` would one by one,
  and the event loop hands over and takes back once a group, not once a file (each hand-off
  costs both threads CPU: docs/PERFORMANCE.md §22). Pause is still seen between files.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from opentelemetry import trace

from services.transfer.resumed_uploads import LargeUpload, large_upload
from services.transfer.throttle import OutsideWindow, Pace, Throttle
from shared.app.held_work import HeldWatch, park
from shared.app.run_lifecycle import OUTCOMES, close_run, lease_kept, stop_on_auth_failure
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.contracts import ChangeKind, Transfer, TransferBatch, TransferJob
from shared.errors import SyncError
from shared.observability import metrics, telemetry
from shared.store.batch_records import FileOutcome
from shared.store.state import Failure, IndexRecord, JobContext
from shared.sync.folders import is_folder
from shared.sync.model import same_content

log = logging.getLogger(__name__)
tracer = trace.get_tracer("scaidrive.transfer")
FLUSH_FILES = 100
FLUSH_S = 1.0
FAILURE_STAGES = {ChangeKind.DELETED: "delete", ChangeKind.MOVED: "move"}
FILES_PER_HANDOFF = 8  # a group's files: one hand-off to a job thread and back for them all
POST_S = 0.25  # a group's thread hands back what ended at least this often (progress)


class Worker(Protocol):
    """What a batch needs of the transfer worker (handlers.Transfers)."""
    rt: Runtime
    shares: dict[str, str]
    throttle: Throttle
    watch: HeldWatch  # the held flags of the connectors with a batch in progress here

    async def apply(self, c: Connector, job: TransferJob, ctx: JobContext) -> tuple: ...

    pool: ThreadPoolExecutor  # the job threads

    @staticmethod
    def check_quota(job: TransferJob, known: IndexRecord | None, share: dict | None) -> None: ...

    def upload_in_thread(self, c: Connector, job: TransferJob, known: IndexRecord | None,
                         pace: Pace | None, large: LargeUpload) -> tuple: ...


def in_groups(c: Connector, x: Transfer, part_size: int) -> bool:
    """Does `x` go to a job thread in a group: an upload `Transfers.apply` sends straight to
    its `_upload` and that needs nothing there but the quota check before its bytes move (a
    one-way connector; no transfer slots or sync window to hold; one PUT, so no upload a
    worker left to look up)? Everything else goes alone through `apply`."""
    return (x.kind in (ChangeKind.CREATED, ChangeKind.MODIFIED) and c.sync_mode != "two_way"
            and c.max_parallel_transfers is None and c.sync_windows is None
            and x.version is not None and x.version.size <= part_size
            and x.from_path is None and not is_folder(x.path))


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
            grouped: list[Transfer] = []
            alone: list[Transfer] = []
            for x in todo:
                (grouped if in_groups(c, x, rt.storage.part_size) else alone).append(x)
            groups = [grouped[i:i + FILES_PER_HANDOFF]
                      for i in range(0, len(grouped), FILES_PER_HANDOFF)]

            async def gated(move: Callable[[], Awaitable[None]]) -> None:
                """One of the batch's moves (a file alone, or a group) within its 8 in flight."""
                async with gate:
                    if self.stop or self.t.watch.held(c.id):
                        self.stop = True
                        return
                    try:
                        await move()
                    except OutsideWindow:
                        self.stop = True  # the rest waits, parked, for the window to open
                    except Exception as exc:  # Redis down: the batch is tried again
                        self.retry = self.retry or exc

            async def one(x: Transfer) -> None:
                async with self.t.throttle.file(c, b.run_id, patience_s=None):
                    await self.file(c, x, ctx.known.get(x.path), share, span)

            with self.t.watch.watching(c.id):
                self.t.watch.note(c.id, ctx.held)
                async with lease_kept(rt, c.id, b.run_id):
                    await asyncio.gather(
                        *(gated(functools.partial(one, x)) for x in alone),
                        *(gated(functools.partial(self.group, c, xs, ctx.known, share, span))
                          for xs in groups))
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
        # Files in flight hold their room in the quota: the next file's check counts them.
        share, reserved = self.in_use(share), _growth(x, known)
        self.usage_delta += reserved
        try:
            got: tuple | Exception = await self.t.apply(c, job, JobContext(c, False, known, share))
        except Exception as exc:
            got = exc
        await self.ended(c, x, job, reserved, got, span)

    async def group(self, c: Connector, xs: list[Transfer], known: dict[str, IndexRecord],
                    share: dict | None, span: trace.Span) -> None:
        """`xs` (`in_groups`) moved by one job thread one after another, each as `file` would
        move it: checked against the quota here first, its outcome recorded as `file`'s. Pause
        or credentials refused: the files not begun are left (the resumed batch does them)."""
        loop, pace, work = asyncio.get_running_loop(), self.t.throttle.pace(c), []
        for x in xs:
            job, was = self.job_of(c.id, x), known.get(x.path)
            try:
                self.t.check_quota(job, was, self.in_use(share))
            except SyncError as exc:
                await self.ended(c, x, job, 0, exc, span)
                continue
            reserved = _growth(x, was)
            self.usage_delta += reserved
            work.append((x, job, was, reserved, await large_upload(self.rt, c, job)))

        ends: asyncio.Queue[tuple[list, bool]] = asyncio.Queue()
        broke: list[BaseException] = []  # what ended the thread's loop other than its end

        def move() -> None:
            """In the thread: each file's end handed back with the others' that ended within
            POST_S of the first (the group's at once when its files are small), the last
            post telling the group is over."""
            ended: list[tuple[tuple, tuple | Exception]] = []
            posted = time.monotonic()
            try:
                for w in work:
                    _, job, was, _, large = w
                    if self.stop or self.t.watch.held(c.id):
                        self.stop = True  # the batch is parked: the rest waits for the resume
                        break
                    try:
                        ended.append((w, self.t.upload_in_thread(c, job, was, pace, large)))
                    except Exception as exc:
                        ended.append((w, exc))
                        if isinstance(exc, SyncError) and exc.cause == "auth_failed":
                            break  # the rest would be refused too: `ended` holds the connector
                    if time.monotonic() - posted >= POST_S:
                        loop.call_soon_threadsafe(ends.put_nowait, (ended, False))
                        ended, posted = [], time.monotonic()
            except BaseException as exc:  # a bug: the batch is tried again, nothing lost
                broke.append(exc)
            finally:
                loop.call_soon_threadsafe(ends.put_nowait, (ended, True))

        self.t.pool.submit(move)  # no future for the loop to wake on: the last post ends it
        begun = 0
        try:
            over = False
            while not over:
                handed, over = await ends.get()
                for (x, job, _, reserved, large), got in handed:
                    begun += 1
                    await large.end(got if isinstance(got, Exception) else None)
                    await self.ended(c, x, job, reserved, got, span)
        except asyncio.CancelledError:  # the worker stops: its thread ends after its file
            self.stop = True
            raise
        for _, _, _, reserved, _ in work[begun:]:
            self.usage_delta -= reserved  # not begun: the resumed batch moves it
        if broke:
            raise broke[0]

    def in_use(self, share: dict | None) -> dict | None:
        """The share as the next file's quota check sees it: with what this batch added."""
        if share is None:
            return None
        return share | {"usage_bytes": share["usage_bytes"] + self.usage_delta}

    async def ended(self, c: Connector, x: Transfer, job: TransferJob, reserved: int,
                    got: tuple | Exception, span: trace.Span) -> None:
        """A file's end: `apply`'s answer or its failure, into the writes of the next flush
        (`reserved`: the room in the quota it held while in flight)."""
        self.usage_delta -= reserved
        if isinstance(got, SyncError) and got.permanent:
            if got.cause == "auth_failed":  # not this file's fault: hold the connector
                self.stop = True
                await stop_on_auth_failure(self.rt, c, self.batch.run_id, str(got))
                return
            telemetry.record_error(span, got)  # type, cause, frames: never the path
            span.set_status(trace.StatusCode.ERROR, got.cause)
            await self.done(c.id, c.target_share, FileOutcome(x.job_id, {"files_errored": 1}),
                            Failure(path=x.path, stage=FAILURE_STAGES.get(x.kind, "transfer"),
                                    cause=got.cause, message=str(got), run_id=job.run_id))
            return
        if isinstance(got, Exception):  # transient (S3 or Redis down, a dropped connection),
            self.retry = self.retry or got  # or a bug: the batch is tried again
            return
        outcome, nbytes, *indexed = got
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
