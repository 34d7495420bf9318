"""Two-way renames (shared/sync/renames.py decides them): the file renamed on one side is renamed
on the other, no bytes sent, and its index record moves to the new path with its owner labels.

- Renamed at the source (MOVED in a two-way connector): the object is copied to its new key
  inside the bucket and the old one removed, only while the old object is still the one the
  scan saw (its etag; the copy carries it as x-amz-copy-source-if-match, and a single-part
  copy's etag is checked against it after) and nothing is at the new key: otherwise nothing is
  moved and the next run decides with the sides as they are then (a ScaiDrive edit of the old
  path is pushed back to it, the new path pulled: both kept). The old object's DELETE is
  conditional on that etag too: an edit landing after the copy keeps the old object and its
  index record, and the next run pushes it back the same way.
- Renamed in ScaiDrive (MOVED_IN_SCAIDRIVE): `Source.move` renames the file at the source, only
  while it is still the version the scan saw and nothing holds the new name (ChangedAtSource
  otherwise: nothing moved; the next run decides, as for a refused delete at the source), and
  only while ScaiDrive still holds the renamed object the scan saw and nothing at the old path.

Both are idempotent: a redelivered job finds the move done (the index at the new path, or the
source's file already there with its file id) and finishes what is left (the folder the
move emptied is removed then too).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Protocol

from services.transfer.object_metadata import object_metadata
from shared.app.runtime import Runtime
from shared.app.source_pool import Sources
from shared.config.connector_model import Connector
from shared.contracts import Owner, TransferJob
from shared.errors import ChangedAtSource, NotFound, ScaiDriveChanged
from shared.storage.s3 import Expected
from shared.store.state import IndexRecord
from shared.sync.keys import object_key
from shared.sync.model import SourceEntry, Versioned, listed_at
from shared.sync.rules import move_key

log = logging.getLogger(__name__)


class Worker(Protocol):
    """What the moves use of the transfer worker (services/transfer/handlers.py)."""

    rt: Runtime
    sources: Sources

    async def _thread(self, fn: Callable[..., Any], *args: Any) -> Any: ...


class Moves:
    def __init__(self, transfers: Worker):
        self.t = transfers
        self.rt = transfers.rt

    # --- renamed at the source: the object moves in the bucket ----------------------------

    async def in_bucket(self, c: Connector, job: TransferJob) -> str:
        old_path = _old_path(job)
        old = await self.rt.state.index_record(c.id, old_path)
        if old is None:  # moved already (a redelivery), or forgotten since the scan
            return "moved" if await self.rt.state.index_record(c.id, job.path) else "skipped"
        src, dst = object_key(c.target_prefix, old_path), object_key(c.target_prefix, job.path)
        have_old, have_new = await self._etag(c, src), await self._etag(c, dst)
        want = _bare(job.target_etag)
        if have_old != want or have_new not in (None, want):
            return "skipped"  # changed in ScaiDrive since the scan: the next run decides
        etag = have_new or await self._copy(c, job, old, src, dst, want)
        if etag is None:
            return "skipped"
        await self.rt.state.put_index(c.id, job.path, _moved(old, job.version, etag))
        try:
            await self.t._thread(self.rt.storage.remove, c.target_share, src, Expected(want))
        except ScaiDriveChanged:
            # Edited in ScaiDrive since the copy: kept, with its index record, so that the
            # next run pushes the edit back to the old path (a change wins over a deletion).
            log.info("old object changed while it was moved: kept",
                     extra={"connector_id": c.id})
            await self.rt.state.add_usage(c.target_share, old.size)  # both objects count
            return "moved"
        await self.rt.state.drop_index(c.id, old_path)  # same bytes: the share's usage holds
        return "moved"

    async def _copy(self, c: Connector, job: TransferJob, old: IndexRecord, src: str,
                    dst: str, want: str) -> str | None:
        """The copy's etag; None (nothing left behind) when the old object changed meanwhile."""
        owner = Owner(user_id=old.owner, source_principal=old.principal, method=old.method,
                      score=old.score)  # the object's, not a lookup of the new path's
        meta = object_metadata(job.model_copy(update={"owner": owner}), job.version or old)
        copied = await self.t._thread(self.rt.storage.copy_if, c.target_share, src, dst, meta,
                                      want)
        if copied is None:
            return None
        etag = _bare(copied)
        if etag != want and "-" not in want:  # a single-part copy keeps its MD5 etag
            log.info("object changed while it was moved: move undone",
                     extra={"connector_id": c.id})
            try:  # our copy, unless a ScaiDrive edit replaced it meanwhile (then kept)
                await self.t._thread(self.rt.storage.remove, c.target_share, dst,
                                     Expected(etag))
            except ScaiDriveChanged:
                pass
            return None
        return etag

    async def _etag(self, c: Connector, key: str) -> str | None:
        stat = await self.t._thread(self.rt.storage.stat, c.target_share, key)
        return _bare(stat.etag) if stat is not None else None

    # --- renamed in ScaiDrive: the file is renamed at the source --------------------------

    async def at_source(self, c: Connector, job: TransferJob) -> str:
        old_path = _old_path(job)
        old = await self.rt.state.index_record(c.id, old_path)
        if old is None:  # moved already (a redelivery), or forgotten since the scan
            return "moved" if await self.rt.state.index_record(c.id, job.path) else "skipped"
        have_old = await self._etag(c, object_key(c.target_prefix, old_path))
        have_new = await self._etag(c, object_key(c.target_prefix, job.path))
        if have_old is not None or have_new != _bare(job.target_etag):
            return "skipped"  # changed in ScaiDrive since the scan: the next run decides
        expect = listed_at(old_path, _version(job))
        try:
            entry = await self.t._thread(self._rename, c, old_path, job.path, expect)
        except ChangedAtSource:
            return "skipped"  # changed at the source since the scan: the next run decides
        if entry is None:
            return "skipped"
        await self.rt.state.put_index(c.id, job.path, _moved(old, entry, have_new))
        await self.rt.state.drop_index(c.id, old_path)
        return "moved"

    def _rename(self, c: Connector, old: str, new: str,
                expect: SourceEntry) -> SourceEntry | None:
        """The file's version at `new`; None when it is neither at `old` nor at `new`. A file
        already at `new` with the expected file id and content is a rename that landed (the
        job delivered again)."""
        source = self.t.sources.get(c)
        try:
            return source.move(old, new, expect)
        except (NotFound, ChangedAtSource) as exc:
            try:
                there = source.stat(new)
            except NotFound:
                there = None
            if there is not None and expect.file_id and move_key(there) == move_key(expect):
                # The same file (its id, its content): moved already, by a worker that may
                # have died before it removed the folder the move emptied.
                source.remove_folder_if_empty(old.rpartition("/")[0])
                return there
            if isinstance(exc, NotFound):
                return None
            raise


def _old_path(job: TransferJob) -> str:
    if job.from_path is None:
        raise ValueError(f"{job.kind} job for {job.path!r} carries no old path")
    return job.from_path


def _version(job: TransferJob) -> Versioned:
    if job.version is None:
        raise ValueError(f"{job.kind} job for {job.path!r} carries no source version")
    return job.version


def _moved(old: IndexRecord, version: Versioned | None, etag: str | None) -> IndexRecord:
    """The old path's record at the new path: its owner labels, the source's version there
    (a rename may change its change time, SharePoint's mtime) and the object's etag."""
    if version is None:
        return dataclasses.replace(old, etag=etag)
    return dataclasses.replace(old, size=version.size, mtime_ns=version.mtime_ns,
                               file_id=version.file_id or old.file_id,
                               content_tag=version.content_tag, change_ns=version.change_ns,
                               etag=etag)


def _bare(etag: str | None) -> str:
    return (etag or "").strip('"')
