"""Apply one transfer job: stream a file into the bucket, copy it (move), or delete it. A batch
of small files' jobs runs each through the same `apply` (services/transfer/batches.py).

Every job is idempotent: a redelivered job finds the index already saying "done" and skips,
a delete re-checks the source first, and a multipart upload a killed worker left is gone on with
where it holds the same bytes, else aborted before the upload starts again (resumed_uploads).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from opentelemetry import trace

from services.transfer.batches import BatchRun
from services.transfer.folders import FolderJobs
from services.transfer.moves import Moves
from services.transfer.object_metadata import object_metadata
from services.transfer.rechecks import bytes_as_indexed
from services.transfer.resumed_uploads import LargeUpload, large_upload
from services.transfer.source_writes import TwoWay, labels
from services.transfer.throttle import Pace, Throttle
from shared.app.held_work import HeldWatch, park
from shared.app.run_lifecycle import fail_job, finish_job, lease_kept, stop_on_auth_failure
from shared.app.runtime import Runtime
from shared.app.source_pool import Sources
from shared.config.connector_model import Connector
from shared.contracts import ChangeKind, Owner, TransferBatch, TransferJob
from shared.errors import NotFound, QuotaExceeded, ScaiDriveChanged, SyncError
from shared.observability import metrics, telemetry
from shared.storage.s3 import Expected
from shared.store.state import Failure, Indexed, IndexRecord, JobContext
from shared.sync.folders import is_folder
from shared.sync.keys import object_key
from shared.sync.model import SourceEntry, same_content, synced_record

log = logging.getLogger(__name__)
# Sent even when the source's version is the one the index holds: the object is missing or
# damaged (REPAIRED), or the bytes differ though the version does not (RECHECKED, checked first).
SEND_ANYWAY = (ChangeKind.REPAIRED, ChangeKind.RECHECKED)
tracer = trace.get_tracer("scaidrive.transfer")


class Transfers:
    def __init__(self, rt: Runtime, sources: Sources, pool: ThreadPoolExecutor):
        self.rt = rt
        self.sources = sources
        self.pool = pool
        self.two_way = TwoWay(self)
        self.moves = Moves(self)  # two-way renames, either way
        self.folders = FolderJobs(self)  # two-way empty folders, either way
        self.shares: dict[str, str] = {}  # connector -> its target share, read with each job
        # The held flags of the connectors with a batch in progress: a pause stops a batch
        # between files (its polling started by main.py).
        self.watch = HeldWatch(rt)
        # Its windows, transfer slots and bandwidth, across every worker (throttle.py).
        self.throttle = Throttle(rt)

    async def _thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def on_batch(self, batch: TransferBatch) -> None:
        await BatchRun(self, batch).run()

    async def on_job(self, job: TransferJob) -> None:
        rt = self.rt
        guess = self.shares.get(job.connector_id)
        ctx = await rt.state.job_context(job.connector_id, job.path, guess)
        c = ctx.connector
        if c is None:
            return  # connector deleted: its queued work is dropped
        if ctx.held:
            await park(rt, c.id)  # out of the lane, untouched, until resumed
        if guess != c.target_share:  # its first job here, or its target changed: read it now
            self.shares[c.id] = c.target_share
            ctx = dataclasses.replace(ctx, share=await rt.state.share(c.target_share))
        with tracer.start_as_current_span(f"transfer {job.kind}", attributes={
                "connector.id": c.id, "run.id": job.run_id, "job.kind": str(job.kind)}) as span:
            if rt.settings.trace_paths:
                span.set_attribute("file.path", job.path)
            try:
                async with lease_kept(rt, c.id, job.run_id), \
                        self.throttle.file(c, job.run_id):  # closed window: parked
                    outcome, nbytes, *indexed = await self.apply(c, job, ctx)
            except SyncError as exc:
                if not exc.permanent:
                    raise  # transient: the broker redelivers with backoff
                if exc.cause == "auth_failed":  # not this file's fault: hold every job
                    await stop_on_auth_failure(rt, c, job.run_id, str(exc))
                    await park(rt, c.id)
                telemetry.record_error(span, exc)
                span.set_status(trace.StatusCode.ERROR, exc.cause)
                span.set_attribute("outcome", "errored")
                await fail_job(rt, c.id, job.run_id, job.job_id, Failure(
                    path=job.path, stage=_stage(job.kind), cause=exc.cause,
                    message=str(exc), run_id=job.run_id))
                return
            span.set_attributes({"outcome": outcome, "bytes": nbytes})
            log.debug("job done", extra={"connector_id": c.id, "run_id": job.run_id,
                                         "outcome": outcome})
        await finish_job(rt, c.id, job.run_id, job.job_id, outcome, nbytes, *indexed)

    async def apply(self, c: Connector, job: TransferJob, ctx: JobContext) -> tuple:
        """(outcome, bytes) or, for an upload, (outcome, bytes, what to write to the index)."""
        if is_folder(job.path):
            return await self.folders.apply(c, job), 0
        if job.kind is ChangeKind.PUSHED:
            return await self.two_way.push(c, job, ctx.known)
        if job.kind is ChangeKind.RESOLVED:
            return await self.two_way.resolve(c, job)
        if job.kind is ChangeKind.DELETED_IN_SCAIDRIVE:
            return await self.two_way.delete_source(c, job), 0
        if job.kind is ChangeKind.BOTH_CHANGED:
            return await self.two_way.both_changed(c, job), 0
        if job.kind is ChangeKind.DELETED:
            return await self._delete(c, job), 0
        if job.kind is ChangeKind.MOVED_IN_SCAIDRIVE:
            return await self.moves.at_source(c, job), 0
        if job.kind is ChangeKind.MOVED and c.sync_mode == "two_way":
            return await self.moves.in_bucket(c, job), 0
        if job.kind is ChangeKind.RELABELED:
            relabeled = await self._relabel(c, job)
            if relabeled is not None:
                return relabeled, 0
        if job.kind is ChangeKind.MOVED and job.from_path is not None:
            if await self._move(c, job, job.from_path):
                return "moved", 0
            result = await self._upload(c, job)  # copy impossible: send the bytes again
            await self._forget(c, job.from_path)
            return result
        return await self._upload(c, job, ctx=ctx, deferred=True)

    # --- upload -------------------------------------------------------------------------

    async def _upload(self, c: Connector, job: TransferJob, checked: bool = False,
                      ctx: JobContext | None = None, deferred: bool = False) -> tuple:
        """`ctx`: the job's state as read with it; `deferred`: leave the index write to the
        job's end (sent with its outcome in one round trip)."""
        key = object_key(c.target_prefix, job.path)
        if c.sync_mode == "two_way" and not checked and not await self._target_as_scanned(c, job):
            return await self.two_way.both_changed(c, job), 0  # edited in ScaiDrive meanwhile
        if ctx is None:
            ctx = JobContext(c, False, await self.rt.state.index_record(c.id, job.path),
                             await self.rt.state.share(c.target_share))
        known = ctx.known
        read_at = time.time()  # the index keeps when the read began (`racily_clean`)
        if job.kind is ChangeKind.RECHECKED and known is not None and \
                await self._thread(self._bytes_as_indexed, c, job, key, known,
                                   self.throttle.pace(c)):
            recorded = Indexed(job.path, dataclasses.replace(known, synced_at=read_at),
                               c.target_share, 0)
            if deferred:
                return "skipped", 0, recorded
            await self.rt.state.put_index(c.id, job.path, recorded.record)
            return "skipped", 0
        self.check_quota(job, known, ctx.share)
        started = time.monotonic()
        # Two-way: the object must still be the version the scan saw when the PUT lands, not
        # only when it was checked above (S3's conditional write: an edit made in ScaiDrive
        # while this file was read is not overwritten).
        expected = Expected(job.target_etag) if c.sync_mode == "two_way" else None
        large = await large_upload(self.rt, c, job)  # what a killed worker left of it
        try:
            result = await self._thread(self._stream, c, job, key, known,
                                        self.throttle.pace(c), expected, large)
        except ScaiDriveChanged:
            await large.end(None)
            if checked:
                raise  # a decision applied: superseded (source_writes.TwoWay.resolve)
            return await self.two_way.both_changed(c, job), 0  # edited during the upload
        except BaseException as exc:
            await large.end(exc)
            raise
        await large.end(None)
        if large.resumed_at is not None:  # the operator's trace shows what was not sent again
            trace.get_current_span().set_attribute("upload.resumed_at", large.resumed_at)
        done = self.uploaded(c, job, known, read_at, started, result)
        if deferred or len(done) == 2:
            return done
        outcome, size, indexed = done
        await self.rt.state.put_index(c.id, job.path, indexed.record)
        await self.rt.state.add_usage(c.target_share, indexed.usage_delta)
        return outcome, size

    def uploaded(self, c: Connector, job: TransferJob, known: IndexRecord | None,
                 read_at: float, started: float, result: tuple[SourceEntry, str] | None
                 ) -> tuple:
        """What `_stream`'s `result` comes to: ("skipped", 0) when the bucket held the version
        already, else ("transferred", bytes, what to write to the index); `read_at`: when the
        read began (`racily_clean`), `started`: when the upload did (its throughput)."""
        if result is None:
            return "skipped", 0
        entry, etag = result
        metrics.throughput.record(entry.size / max(time.monotonic() - started, 1e-6),
                                  {"connector.id": c.id})
        owner = job.owner or Owner(user_id=c.identity_mapping.system_owner)
        indexed = Indexed(job.path, synced_record(
            entry, etag=etag, synced_at=read_at, **labels(c, owner),
            fallback_file_id=job.version.file_id if job.version else None),
            c.target_share, entry.size - (known.size if known else 0))
        return "transferred", entry.size, indexed

    def upload_in_thread(self, c: Connector, job: TransferJob, known: IndexRecord | None,
                         pace: Pace | None, large: LargeUpload) -> tuple:
        """In a job thread, for a file of a batch's group (`batches.in_groups`): what
        `_upload` does for a one-way upload past its checks (made in the loop), `uploaded`'s
        answer; a failure is raised, as `_upload`'s."""
        read_at, started = time.time(), time.monotonic()
        result = self._stream(c, job, object_key(c.target_prefix, job.path), known, pace, None,
                              large)
        return self.uploaded(c, job, known, read_at, started, result)

    def _stream(self, c: Connector, job: TransferJob, key: str, known: IndexRecord | None,
                pace: Pace | None, expected: Expected | None, large: LargeUpload
                ) -> tuple[SourceEntry, str] | None:
        """In a thread: the source's bytes into the bucket (through the connector's bandwidth
        limit, `pace`), over the object version `expected` only (two-way); a large file's
        upload goes on with what a killed worker left of it (`large`)."""
        storage = self.rt.storage
        hint = job.version.size if job.version else None
        with self.sources.get(c).open_read(job.path, size_hint=hint,
                                           expect=job.version) as reader:
            entry = reader.entry
            if job.kind not in SEND_ANYWAY and known and same_content(entry, known):
                return None  # a redelivered job whose work is already in the bucket
            metadata = object_metadata(job, entry)
            going_on, begun = large.prepare(key, reader, metadata) \
                if large.needed(entry.size) else (None, None)
            etag = storage.put(c.target_share, key, pace.reader(reader) if pace else reader,
                               entry.size, metadata, expected, going_on=going_on, begun=begun)
        return entry, etag

    def _bytes_as_indexed(self, c: Connector, job: TransferJob, key: str, known: IndexRecord,
                          pace: Pace | None) -> bool | None:
        """In a thread: does the source still hold the bytes the index's object has? (rechecks)"""
        return bytes_as_indexed(self.sources.get(c), job.path, job.version, self.rt.storage,
                                c.target_share, key, known, pace)

    @staticmethod
    def check_quota(job: TransferJob, known: IndexRecord | None, share: dict | None) -> None:
        if share is None or job.version is None:
            return
        quota = share.get("quota_bytes")
        if not quota:
            return
        after = share["usage_bytes"] - (known.size if known else 0) + job.version.size
        if after > quota:
            raise QuotaExceeded(
                f"file of {job.version.size} bytes does not fit the share's quota "
                f"({share['usage_bytes']} of {quota} bytes used)", job.path)

    # --- move and delete ----------------------------------------------------------------

    async def _move(self, c: Connector, job: TransferJob, from_path: str) -> bool:
        """Server-side copy for a renamed file (from `from_path`); False means 'upload it
        instead'."""
        state = self.rt.state
        old = await state.index_record(c.id, from_path)
        if old is None:
            return await state.index_record(c.id, job.path) is not None  # already moved
        src = object_key(c.target_prefix, from_path)
        dst = object_key(c.target_prefix, job.path)
        meta = object_metadata(job, old)
        try:
            etag = await self._thread(self.rt.storage.copy, c.target_share, src, dst, meta)
        except Exception as exc:  # the old object is gone or unreadable: upload instead
            log.info("move fell back to upload: %s", exc, extra={"connector_id": c.id})
            return False
        # A rename changes an SMB file's change time: keep the one the scan saw, or the next run
        # would take the moved file for an edit.
        change_ns = job.version.change_ns if job.version else old.change_ns
        await state.put_index(c.id, job.path, dataclasses.replace(old, etag=etag,
                                                                  change_ns=change_ns))
        await state.add_usage(c.target_share, old.size)  # _forget takes it off the old name
        await self._forget(c, from_path)
        return True

    async def _relabel(self, c: Connector, job: TransferJob) -> str | None:
        """New owner metadata on an object whose bytes are unchanged: a copy onto itself inside
        the bucket (no content through us). None: not indexed any more, upload it instead."""
        known = await self.rt.state.index_record(c.id, job.path)
        if known is None or job.owner is None:
            return None
        fields = labels(c, job.owner)
        if (known.owner, known.method) != (fields["owner"], fields["method"]):
            key = object_key(c.target_prefix, job.path)
            meta = object_metadata(job, known)
            fields["etag"] = await self._thread(self.rt.storage.copy, c.target_share, key, key,
                                                meta)
        await self.rt.state.put_index(c.id, job.path, dataclasses.replace(known, **fields))
        return "relabeled" if "etag" in fields else "skipped"

    async def _forget(self, c: Connector, path: str, expected: Expected | None = None) -> None:
        """Remove a path's object and index entry (the old name of a moved file); with
        `expected`, only while the object is that version (ScaiDriveChanged: both kept)."""
        known = await self.rt.state.index_record(c.id, path)
        await self._thread(self.rt.storage.remove, c.target_share,
                           object_key(c.target_prefix, path), expected)
        await self.rt.state.drop_index(c.id, path)
        if known:
            await self.rt.state.add_usage(c.target_share, -known.size)

    async def _target_as_scanned(self, c: Connector, job: TransferJob) -> bool:
        """Two-way: does ScaiDrive still hold the version the scan saw (None: no object)?"""
        stat = await self._thread(self.rt.storage.stat, c.target_share,
                                  object_key(c.target_prefix, job.path))
        return (stat.etag if stat else None) == job.target_etag

    async def _delete(self, c: Connector, job: TransferJob) -> str:
        if c.sync_mode == "two_way" and not await self._target_as_scanned(c, job):
            return "skipped"  # edited in ScaiDrive since the scan: the next run pushes it
        try:
            await self._thread(lambda: self.sources.get(c).stat(job.path))
            return "skipped"  # the file is back at the source since the scan: keep it
        except NotFound:
            pass
        # Two-way: deleted only while still the version the scan saw (S3's conditional
        # DELETE: an edit made in ScaiDrive since the check above is kept, and the next run
        # pushes it back to the source, where a change wins over a deletion).
        expected = Expected(job.target_etag) if c.sync_mode == "two_way" else None
        try:
            await self._forget(c, job.path, expected)
        except ScaiDriveChanged:
            return "skipped"
        return "deleted"


def _stage(kind: ChangeKind) -> str:
    return {ChangeKind.DELETED: "delete", ChangeKind.MOVED: "move", ChangeKind.PUSHED: "push",
            ChangeKind.DELETED_IN_SCAIDRIVE: "delete_source", ChangeKind.BOTH_CHANGED: "compare",
            ChangeKind.MOVED_IN_SCAIDRIVE: "move_source",
            ChangeKind.RESOLVED: "resolve"}.get(kind, "transfer")
