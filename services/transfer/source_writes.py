"""Two-way steps: write ScaiDrive's changes back to the source, delete there, compare a file
changed on both sides, and apply a conflict decision (once `conflict_decisions` found it still
current: a stale one is superseded, nothing written).

A concurrent edit is never overwritten: the source checks the version we expect (SharePoint's
If-Match, a stat on SMB) and the object's etag is checked before ScaiDrive's copy is replaced;
either mismatch sends the file to the comparison, which records identical contents or hands a
real conflict to the conflict service.

A decision's writes are conditional the same way, on the versions its check found: ScaiDrive's
version goes to the source only over the detected source version (and only while the object
is still the detected etag), the source's version into the bucket only while the object is
still the detected etag. A mismatch compares both sides: identical (a redelivery whose write
had landed) is recorded and the decision counts as applied; different supersedes it, nothing
written. The bucket has no conditional put through our S3 client (minio's put_object cannot
send If-Match, and moto honours it on single PUTs only), so "source wins" re-checks the etag
right before the upload: an edit in ScaiDrive during the upload itself is the residual window.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from services.transfer.conflict_decisions import (
    Side,
    announce_resolved,
    may_apply,
    superseded_while_applying,
)
from services.transfer.rechecks import same_bytes
from services.transfer.throttle import Pace, Throttle
from shared.app.runtime import Runtime
from shared.app.source_pool import Sources
from shared.config.connector_model import Connector
from shared.contracts import ChangeKind, ConflictDetected, Owner, SideVersion, TransferJob
from shared.errors import ChangedAtSource, NotFound, ScaiDriveChanged
from shared.store.state import IndexRecord, JobContext
from shared.sync.keys import conflict_name, metadata_value, object_key
from shared.sync.model import (
    ABSENT,
    SourceEntry,
    listed_at,
    racily_clean,
    synced_record,
    wire_version,
)


class Worker(Protocol):
    """What the two-way steps use of the transfer worker (services/transfer/handlers.py)."""

    rt: Runtime
    sources: Sources
    throttle: Throttle

    async def _thread(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    async def _upload(self, c: Connector, job: TransferJob, checked: bool = False,
                      ctx: JobContext | None = None, deferred: bool = False) -> tuple: ...

    def _bytes_as_indexed(self, c: Connector, job: TransferJob, key: str, known: IndexRecord,
                          pace: Pace | None) -> bool | None: ...


class TwoWay:
    def __init__(self, transfers: Worker):
        self.t = transfers
        self.rt = transfers.rt

    # --- ScaiDrive -> source ------------------------------------------------------------

    async def push(self, c: Connector, job: TransferJob,
                   known: IndexRecord | None = None) -> tuple[str, int]:
        """ScaiDrive's version onto the source, if the source still holds what the scan saw:
        its version, and where that version was read racily (`racily_clean`: `known`, the
        index's record) its bytes too."""
        expect = _entry(job) if job.version else ABSENT
        if job.version is not None and known is not None and racily_clean(known):
            key = object_key(c.target_prefix, job.path)
            if await self.t._thread(self.t._bytes_as_indexed, c, job, key, known,
                                    self.t.throttle.pace(c)) is False:
                return await self.both_changed(c, job), 0  # edited in the tick we read it
        try:
            pushed = await self._push(c, job.path, job.path, expect)
        except ChangedAtSource:
            return await self.both_changed(c, job), 0  # edited at the source meanwhile
        if pushed is None:
            return "skipped", 0  # deleted in ScaiDrive since the scan: the next run decides
        return "transferred", pushed

    async def _push(self, c: Connector, key_path: str, path: str, expect,
                    etag: str | None = None) -> int | None:
        """Stream the object at `key_path` to the source at `path`; index it. Its size, or
        None if the object is gone. `etag`: the object must still be that version (else
        ScaiDriveChanged, nothing written)."""
        key = object_key(c.target_prefix, key_path)
        pushed = await self.t._thread(self._write, c, key, path, expect, etag,
                                      self.t.throttle.pace(c))
        if pushed is None:
            return None
        entry, etag, size = pushed
        await self._record(c, path, entry, etag, size)
        return size

    def _write(self, c: Connector, key: str, path: str, expect, want: str | None = None,
               pace: Pace | None = None):
        """(the source's new version, the object's etag, its size), or None if it is gone.
        Read through the connector's bandwidth limit (`pace`), as uploads are."""
        obj = self.rt.storage.open_read(c.target_share, key)
        if obj is None:
            if want is not None:
                raise ScaiDriveChanged(key)
            return None
        try:
            size, etag = int(obj.headers["content-length"]), obj.headers["etag"].strip('"')
            if want is not None and etag != want.strip('"'):
                raise ScaiDriveChanged(key)
            data = pace.reader(obj) if pace else obj
            return self.t.sources.get(c).write(path, data, size, expect=expect), etag, size
        finally:
            obj.close()
            obj.release_conn()

    async def delete_source(self, c: Connector, job: TransferJob) -> str:
        key = object_key(c.target_prefix, job.path)
        if await self.t._thread(self.rt.storage.stat, c.target_share, key) is not None:
            return "skipped"  # back in ScaiDrive since the scan: keep both sides
        try:
            await self.t._thread(lambda: self.t.sources.get(c).delete(job.path, expect=_entry(job)))
        except ChangedAtSource:
            return "skipped"  # changed at the source since: the next run brings it back
        except NotFound:
            pass
        known = await self.rt.state.index_record(c.id, job.path)
        await self.rt.state.drop_index(c.id, job.path)
        if known:
            await self.rt.state.add_usage(c.target_share, -known.size)
        return "deleted"

    # --- both changed -------------------------------------------------------------------

    async def both_changed(self, c: Connector, job: TransferJob) -> str:
        """Identical contents on both sides: just record them. Different: a conflict."""
        key = object_key(c.target_prefix, job.path)
        compared = await self.t._thread(self._compare, c, job.path, key)
        if compared is None:
            return "skipped"  # one side vanished meanwhile: the next run decides
        same, entry, stat = compared
        if same:
            await self._record(c, job.path, entry, stat.etag, stat.size, job.owner)
            return "skipped"
        await self._conflict(c, job, entry, stat)
        return "conflict"

    def _compare(self, c: Connector, path: str, key: str):
        storage = self.rt.storage
        stat = storage.stat(c.target_share, key)
        if stat is None:
            return None
        try:
            with self.t.sources.get(c).open_read(path) as reader:
                if reader.entry.size != stat.size:
                    return False, reader.entry, stat
                obj = storage.open_read(c.target_share, key)
                if obj is None:
                    return None
                try:
                    return same_bytes(reader, obj, stat.size), reader.entry, stat
                finally:
                    obj.close()
                    obj.release_conn()
        except NotFound:
            return None

    async def _conflict(self, c: Connector, job: TransferJob, entry: SourceEntry, stat) -> None:
        tag = (f"{c.id}\0{job.path}\0{entry.size}\0{entry.mtime_ns}\0{entry.content_tag}"
               f"\0{stat.etag}")
        meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        editor = meta.get("x-amz-meta-scaidrive-editor") or meta.get("x-amz-meta-scaidrive-owner")
        owner = job.owner
        msg = ConflictDetected(
            conflict_id=hashlib.sha1(tag.encode()).hexdigest()[:20], connector_id=c.id,
            connector_name=c.name, path=job.path, policy=c.conflict_policy,
            source=SideVersion(size=entry.size, mtime=_when(entry.mtime_ns),
                               editor=_editor(owner),
                               etag=entry.content_tag),
            scaidrive=SideVersion(size=stat.size, mtime=stat.last_modified, editor=editor,
                                  etag=stat.etag),
            source_version=wire_version(entry))
        await self.rt.broker.publish("commands", "conflict", msg)

    # --- a decision ---------------------------------------------------------------------

    async def resolve(self, c: Connector, job: TransferJob) -> tuple[str, int]:
        """Apply a decision its check found current, each write conditional on the versions
        checked; a side changed in between supersedes it (nothing written there)."""
        store, cid = self.rt.state.conflicts, job.conflict_id or ""
        if not await may_apply(self.t, store, c, job):
            return "skipped", 0  # applied already, or stale: superseded, nothing written
        try:
            nbytes = await self._decision(c, job)
        except (ChangedAtSource, ScaiDriveChanged) as exc:
            if not await self._already_equal(c, job):
                side: Side = "source" if isinstance(exc, ChangedAtSource) else "ScaiDrive"
                await superseded_while_applying(self.rt, store, c, cid, side)
                return "skipped", 0
            nbytes = 0  # both sides hold the same bytes: a redelivery's write had landed
        await announce_resolved(self.rt, store, cid)
        await store.applied(cid)  # set: may_apply found the conflict
        return "transferred", nbytes

    async def _decision(self, c: Connector, job: TransferJob) -> int:
        nbytes = 0
        if job.winner == "keep_both":  # ScaiDrive's version under a suffixed name, both sides
            nbytes += await self._keep_scaidrive_copy(c, job)
        if job.winner == "scaidrive":  # only over the source version the check saw
            return nbytes + (await self._push(c, job.path, job.path, _entry(job),
                                              etag=job.target_etag or "") or 0)
        key = object_key(c.target_prefix, job.path)
        stat = await self.t._thread(self.rt.storage.stat, c.target_share, key)
        if (stat.etag.strip('"') if stat else None) != (job.target_etag or "").strip('"'):
            raise ScaiDriveChanged(key)  # re-checked right before the upload
        return nbytes + (await self._take_source(c, job))[1]

    async def _already_equal(self, c: Connector, job: TransferJob) -> bool:
        """Both sides hold the same bytes (recorded in the index if so)."""
        compared = await self.t._thread(self._compare, c, job.path,
                                        object_key(c.target_prefix, job.path))
        if compared is None or not compared[0]:
            return False
        _same, entry, stat = compared
        await self._record(c, job.path, entry, stat.etag, stat.size, job.owner)
        return True

    async def _keep_scaidrive_copy(self, c: Connector, job: TransferJob) -> int:
        copy = conflict_name(job.path, job.conflict_id or "")
        src, dst = object_key(c.target_prefix, job.path), object_key(c.target_prefix, copy)
        stat = self.rt.storage.stat
        # Copied once: a retry after the source's version took the name must not copy that.
        if await self.t._thread(stat, c.target_share, dst) is None and \
                await self.t._thread(stat, c.target_share, src) is not None:
            await self.t._thread(self.rt.storage.copy, c.target_share, src, dst,
                                 {"source-path": metadata_value(copy)})
        return await self._push(c, copy, copy, None) or 0  # our own name: no expectation

    async def _take_source(self, c: Connector, job: TransferJob) -> tuple[str, int]:
        known = await self.rt.state.index_record(c.id, job.path)
        owner = job.owner or (Owner(user_id=known.owner, source_principal=known.principal,
                                    method=known.method, score=known.score) if known else None)
        pull = job.model_copy(update={"kind": ChangeKind.REPAIRED, "owner": owner})
        return await self.t._upload(c, pull, checked=True)

    async def _record(self, c: Connector, path: str, entry: SourceEntry, etag: str, size: int,
                      owner: Owner | None = None) -> None:
        """Both sides hold this now: the source's version (as the source reports it: SharePoint
        may rewrite an Office file) and ScaiDrive's object etag."""
        known = await self.rt.state.index_record(c.id, path)
        if owner is None and known is not None:  # unchanged ownership: keep its labels
            kept = {k: getattr(known, k) for k in
                    ("owner", "principal", "method", "score", "identity_version")}
        else:
            kept = labels(c, owner or Owner(user_id=c.identity_mapping.system_owner))
        await self.rt.state.put_index(c.id, path, synced_record(
            entry, etag=etag, synced_at=time.time(), **kept))
        await self.rt.state.add_usage(c.target_share, size - (known.size if known else 0))


def labels(c: Connector, owner: Owner) -> dict:
    """The index fields that say who owns the object and under which mapping version."""
    return {"owner": owner.user_id, "principal": owner.source_principal, "method": owner.method,
            "score": owner.score,
            # A mapping made while the directory was down is retried by the next run.
            "identity_version": 0 if owner.degraded else c.identity_version}


def _entry(job: TransferJob) -> SourceEntry:
    """The source version the scan saw, as the source's conditional writes expect it (a job
    without one is malformed: it fails like a handler's crash)."""
    if job.version is None:
        raise ValueError(f"{job.kind} job for {job.path!r} carries no source version")
    return listed_at(job.path, job.version)


def _editor(owner: Owner | None) -> str | None:
    """The ScaiDrive user the source's owner maps to, else the source principal itself."""
    if owner is None:
        return None
    return owner.source_principal if owner.method == "system_owner" else owner.user_id


def _when(mtime_ns: int) -> datetime:
    return datetime.fromtimestamp(mtime_ns / 1e9, UTC)
