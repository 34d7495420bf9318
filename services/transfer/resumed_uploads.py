"""Large uploads go on where a worker that died left them: the next worker given the file sends
only the parts the bucket does not hold yet, instead of reading and sending the whole file again.

A worker killed mid-upload (SIGKILL, its machine lost, scaled down with no time to finish) leaves
a multipart upload open in the bucket and its record in the store (`Store.uploads`, written as
the upload began). The job comes back (the broker, or a claim taken over); the worker given it
goes on with that upload only when it would send the same bytes to the same object: the same
source version (file id, size, mtime, change time, content hash: `OpenUpload.goes_on`), the same
object metadata (the owner) and part size. It asks S3 which parts it holds (ListParts), has the
reader start after them (`Reader.start_at`) and sends the rest. Anything else (the file changed,
S3 no longer has the upload) aborts what was left and uploads afresh, as before. The record is
forgotten once the upload ends either way. An upload that failed for want of S3 (past the parts'
patience) or of the source for now (`Transient`) is left open with its record: the job comes
back and goes on with its parts the same way.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.contracts import TransferJob
from shared.observability import metrics
from shared.sources.base import Reader
from shared.storage.multipart import left_for_the_retry
from shared.storage.s3 import PartsSent
from shared.store.upload_records import OpenUpload

log = logging.getLogger(__name__)
RECORD_TIMEOUT_S = 30.0  # the store's write of a new upload's record, from the upload's thread


@dataclass
class LargeUpload:
    """One job's upload, as far as going on with it goes: the upload a worker left (`left`)."""

    rt: Runtime
    loop: asyncio.AbstractEventLoop
    c: Connector
    path: str
    left: OpenUpload | None
    recorded: list[str] = field(default_factory=list)  # ids of the uploads this job began
    prepared: bool = False  # `prepare` ran: what a worker left was taken over or aborted
    resumed_at: int | None = None  # the offset it went on from, if it went on with one

    def needed(self, size: int) -> bool:
        """Is there an upload to prepare: a file past the part size, or a leftover to abort
        (the file a worker was uploading is now small enough for one PUT)?"""
        return size > self.rt.storage.part_size or self.left is not None

    def prepare(self, key: str, reader: Reader, metadata: dict[str, str]
                ) -> tuple[PartsSent | None, Callable[[str], None] | None]:
        """In the upload's thread, before it: the parts to go on with (the reader then starts
        after them) or None, and what records a new upload as it begins (None: the file goes
        in one PUT). Leftovers of other uploads of `key` are aborted."""
        storage, left = self.rt.storage, self.left
        self.prepared = True
        if reader.entry.size <= storage.part_size:
            storage.abort_uploads(self.c.target_share, key)  # what a worker left
            return None, None
        same = left is not None and left.goes_on(key, storage.part_size, reader.entry, metadata)
        parts = storage.left_upload(self.c.target_share, key,
                                    left.upload_id if left is not None and same else None)
        if parts is not None:
            offset = self.resumed_at = parts.offset(storage.part_size)
            reader.start_at(offset)
            metrics.resumed_bytes.add(offset, {"connector.id": self.c.id})
            log.info("going on with an upload a worker left: %d parts (%d of %d bytes) in the "
                     "bucket already", len(parts.etags), offset, reader.entry.size,
                     extra={"connector_id": self.c.id})

        def begun(upload_id: str) -> None:
            record = OpenUpload(key, upload_id, storage.part_size, reader.entry, metadata)
            asyncio.run_coroutine_threadsafe(self.rt.state.uploads.put(
                self.c.id, self.path, record), self.loop).result(RECORD_TIMEOUT_S)
            self.recorded.append(upload_id)

        return parts, begun

    async def end(self, failure: BaseException | None) -> None:
        """The upload ended (completed, or aborted after a failure): its record goes. After a
        failure the job comes back from (`left_for_the_retry`) the upload stays open and its
        record kept: the retry goes on with its parts. A job that ended before its upload
        began (the file gone from the source, unreadable, or already in the bucket) aborts
        what a worker left: no later job would (its parts stayed in the bucket for good)."""
        if failure is not None and left_for_the_retry(failure):
            return
        if self.left is not None and not self.prepared:
            try:
                await asyncio.to_thread(self.rt.storage.abort_uploads, self.c.target_share,
                                        self.left.key)
            except Exception:  # S3 out of reach: the record stays, the next job aborts it
                log.warning("an upload a worker left could not be aborted", exc_info=True,
                            extra={"connector_id": self.c.id})
                return
        if self.left is not None or self.recorded:
            await self.rt.state.uploads.forget(self.c.id, self.path)


async def large_upload(rt: Runtime, c: Connector, job: TransferJob) -> LargeUpload:
    """What a worker left of `job`'s upload: read only for a file past the part size (or of
    a size not known before it is opened)."""
    left = None
    if job.version is None or job.version.size > rt.storage.part_size:
        left = await rt.state.uploads.get(c.id, job.path)
    return LargeUpload(rt, asyncio.get_running_loop(), c, job.path, left)
