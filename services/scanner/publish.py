"""What both scan modes share: the per-file failures a listing produces, and publishing the
decided changes (owners looked up a chunk at a time; versions put on the wire here; small
files' changes batched, large files' alone)."""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from shared.app.held_work import PauseGate
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.contracts import Change, ChangeKind, FileChanged, FileChanges, Lane
from shared.errors import SyncError
from shared.sources.base import Source
from shared.store.state import Failure
from shared.sync.folders import is_folder
from shared.sync.keys import object_key
from shared.sync.model import DeltaCursor, IndexRecord, Listing, SourceEntry, wire_version
from shared.sync.rules import Action

NEEDS_OWNER = (ChangeKind.CREATED, ChangeKind.MODIFIED, ChangeKind.REPAIRED,
               ChangeKind.BOTH_CHANGED)
PUBLISH_CHUNK = 100


@dataclass
class ScanOutcome:
    jobs: int = 0
    listed: int = 0  # files listed with a name the target can hold
    errors: int = 0  # per-file failures: unreadable folders, names
    unchanged: int = 0
    withheld: int = 0  # deletions not decided: their folder could not be listed
    held: int = 0  # deletions waiting for an admin
    cursor: DeltaCursor | None = None
    resynced: bool = False
    # The records of the indexed paths changes were published for (a delta position's).
    acted: dict[str, IndexRecord] = field(default_factory=dict)
    # The paths of `ChangePublisher.watch` (uploads a worker left) a change was published for.
    published: set[str] = field(default_factory=set)
    bytes_to_send: int = 0  # content the changes will copy: the run's byte total


def settle(task: asyncio.Future) -> None:
    """A read started beside the walk, once the scan goes no further with it: cancelled if
    still running; otherwise its failure, already raised elsewhere, counts as retrieved."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


def job_id(action: Action) -> str:
    """Deterministic per run and path: a redelivered scan republishes the same job ids."""
    return hashlib.sha1(f"{action.kind}\0{action.path}".encode()).hexdigest()[:20]


def list_failures(c: Connector, part: Listing, run_id: str) -> tuple[list[SourceEntry],
                                                                      list[Failure]]:
    """(entries the target can hold, failures): folders that could not be read and names the
    target cannot hold are per-file failures. Bad names are never synced, so nothing is
    deleted for them."""
    failures = [Failure(path=f.path, stage="list", cause=f.cause, message=f.message,
                        run_id=run_id) for f in part.failures]
    kept = []
    for path, entry in part.entries.items():
        try:
            object_key(c.target_prefix, path)
        except SyncError as exc:
            failures.append(Failure(path=path, stage="name", cause=exc.cause,
                                    message=str(exc), run_id=run_id))
        else:
            kept.append(entry)
    return kept, failures


SENDS_CONTENT = (ChangeKind.CREATED, ChangeKind.MODIFIED, ChangeKind.REPAIRED)
# Two-way work at the source goes alone, and so does a folder's (services/transfer/folders.py).
ALONE = (ChangeKind.PUSHED, ChangeKind.DELETED_IN_SCAIDRIVE, ChangeKind.MOVED_IN_SCAIDRIVE,
         ChangeKind.BOTH_CHANGED, ChangeKind.RESOLVED)


class ChangePublisher:
    """Publishes a scan's changes: small files' in batches (`FileChanges`), large files' and
    two-way work at the source alone (`FileChanged`). Owners are looked up a chunk at a time,
    so transfers start while the rest (one SMB round trip each) are still being read."""

    def __init__(self, rt: Runtime, c: Connector, run_id: str, source: Source,
                 keep_acted: bool = False, watch: Collection[str] = ()):
        self.rt, self.c, self.run_id, self.source = rt, c, run_id, source
        s = rt.settings
        self.batch_files, self.batch_bytes = s.batch_files, s.batch_mb * 1024 * 1024
        self.alone_from = s.batch_file_max_mb * 1024 * 1024  # bytes: a file this big goes alone
        self.pending: list[Change] = []
        self.pending_bytes = 0
        self.bytes_to_send = 0  # of every change published: a run's total, for its progress
        self.files_sent = 0  # published so far: past a batch's worth, the run goes to bulk
        self.bytes_sent = 0
        self.gate = PauseGate(rt, c.id)  # paused: no owner lookups, no publishing
        # The records of the indexed paths changes were published for, where a delta position
        # is saved after the run (`DeltaCursor.stored`): kept only then (the run's changes).
        self.keep_acted = keep_acted
        self.acted: dict[str, IndexRecord] = {}
        # Paths with an upload a worker left (`left_uploads`): which got a change (`published`).
        self.watch, self.published = frozenset(watch), set[str]()

    async def add(self, actions: list[Action], records: Mapping[str, IndexRecord]) -> None:
        for start in range(0, len(actions), PUBLISH_CHUNK):
            await self.gate.wait()
            chunk = actions[start:start + PUBLISH_CHUNK]
            if self.watch:
                self.published.update(a.path for a in chunk if a.path in self.watch)
            if self.keep_acted:
                self.acted.update((p, records[p]) for a in chunk
                                  for p in (a.path, a.from_path or "") if p in records)
            owners = await asyncio.to_thread(self.source.owners, [
                a.path for a in chunk if a.kind in NEEDS_OWNER and not is_folder(a.path)])
            alone: list[FileChanged] = []
            for a in chunk:
                change = Change(job_id=job_id(a), kind=a.kind, path=a.path,
                                from_path=a.from_path,
                                version=None if a.version is None else wire_version(a.version),
                                owner_principal=owners.get(a.path, _principal(records, a.path)),
                                target_etag=a.target_etag)
                if change.version is not None and change.kind in SENDS_CONTENT:
                    self.bytes_to_send += change.version.size
                if self._alone(change):
                    lane = self._lane(1, change.version.size if change.version else 0)
                    alone.append(FileChanged(connector_id=self.c.id, run_id=self.run_id,
                                             lane=lane, **dict(change)))
                else:
                    await self._batch(change)
            lanes = self.rt.broker.lanes
            await self.rt.broker.publish_many("changes", [
                (lanes.routing_key("changes", self.c.id, e.lane), e) for e in alone])

    def _alone(self, change: Change) -> bool:
        return not self.batch_files or change.kind in ALONE or is_folder(change.path) or (
            change.version is not None and change.version.size >= self.alone_from)

    async def _batch(self, change: Change) -> None:
        self.pending.append(change)
        self.pending_bytes += change.version.size if change.version else 0
        if len(self.pending) >= self.batch_files or self.pending_bytes >= self.batch_bytes:
            await self.flush()

    async def flush(self) -> None:
        """Publish the batch being filled (the scan calls this once it has decided all)."""
        if self.pending:
            lane = self._lane(len(self.pending), self.pending_bytes)
            await self.rt.broker.publish_work("changes", FileChanges(
                connector_id=self.c.id, run_id=self.run_id, changes=self.pending, lane=lane),
                lane, self.c.id)
        self.pending, self.pending_bytes = [], 0

    def _lane(self, files: int, nbytes: int) -> Lane:
        """The run's first batch's worth goes to the main lane, the rest to bulk, so a small
        connector sharing a main shard waits behind one batch of a big run at most."""
        first = self.files_sent < max(1, self.batch_files) and self.bytes_sent < self.batch_bytes
        self.files_sent += files
        self.bytes_sent += nbytes
        return "main" if first else "bulk"


def _principal(records: Mapping[str, IndexRecord], path: str) -> str | None:
    rec = records.get(path)
    return rec.principal if rec else None
