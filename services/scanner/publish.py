"""What both scan modes share: the per-file failures a listing produces, and publishing the
decided changes (owners looked up a chunk at a time; versions put on the wire here)."""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.contracts import ChangeKind, FileChanged
from shared.errors import SyncError
from shared.sources.base import Source
from shared.store.state import Failure
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


async def publish_changes(rt: Runtime, c: Connector, run_id: str, source: Source,
                          actions: list[Action], records: Mapping[str, IndexRecord]) -> None:
    """Publish in chunks, looking owners up per chunk: transfers start while the rest of the
    owners (one SMB round trip each) are still being read."""
    await rt.broker.connector_queue("identity", c.id)  # so the changes have somewhere to go
    for start in range(0, len(actions), PUBLISH_CHUNK):
        chunk = actions[start:start + PUBLISH_CHUNK]
        owners = await asyncio.to_thread(
            source.owners, [a.path for a in chunk if a.kind in NEEDS_OWNER])
        events = [
            FileChanged(connector_id=c.id, run_id=run_id, job_id=job_id(a), kind=a.kind,
                        path=a.path, from_path=a.from_path,
                        version=None if a.version is None else wire_version(a.version),
                        owner_principal=owners.get(a.path, _principal(records, a.path)),
                        target_etag=a.target_etag)
            for a in chunk
        ]
        await rt.broker.publish_many("changes", [(c.id, e) for e in events])


def _principal(records: Mapping[str, IndexRecord], path: str) -> str | None:
    rec = records.get(path)
    return rec.principal if rec else None
