"""The walk both streaming scans share: the source a folder at a time into the scan's Redis
working set (`ScanStore`: the listed entries and paths), the per-file listing failures recorded,
the run's progress moving as folders are listed, and the walk waiting at the next folder while
the connector is paused. What it holds is a folder's width (and a chunk); the listing's flags,
failures and empty folders come back in `Walked.listing`."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.scanner.publish import list_failures
from shared.app.held_work import PauseGate
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.errors import ListingFailed
from shared.sources.base import Source
from shared.store.scan_listing import ScanStore
from shared.sync.model import DeltaCursor, Listing, SourceEntry, merge_flags


@dataclass
class Walked:
    listing: Listing = field(default_factory=Listing)  # flags and failures; entries in Redis
    listed: int = 0
    errors: int = 0


async def walk_into(rt: Runtime, c: Connector, run_id: str, source: Source,
                    cursor: DeltaCursor | None, store: ScanStore) -> Walked:
    walked = Walked()
    parts = source.walk(cursor)
    batch: list[SourceEntry] = []
    gate = PauseGate(rt, c.id)  # paused: the walk waits at the next folder
    once = cursor is not None  # a delta listing's index pages may repeat a file (HSCAN)
    try:
        while (part := await asyncio.to_thread(next, parts, None)) is not None:
            root = next((f for f in part.failures if f.path == ""), None)
            if root is not None:  # wrong password, share gone, server down: the run fails
                raise ListingFailed(root.cause, root.message)
            merge_flags(walked.listing, part)
            kept, failures = list_failures(c, part, run_id)
            await rt.state.add_failures(c.id, failures)
            walked.errors += len(failures)
            batch += kept
            if len(batch) >= store.chunk:  # folders are often small: a round trip per chunk
                walked.listed += await _listed(rt, c, store, batch, once)
                batch = []
            if await gate.held():  # the progress shows what was listed; the next folder waits
                walked.listed += await _listed(rt, c, store, batch, once)
                batch = []
                await gate.until_resumed()
        walked.listed += await _listed(rt, c, store, batch, once)
    finally:
        _close(parts)
    return walked


async def _listed(rt: Runtime, c: Connector, store: ScanStore, batch: list[SourceEntry],
                  once: bool) -> int:
    """Keep a chunk of the listing (`once`: each path once), and show it in the run's progress
    while the walk goes on (an initial sync's listing can take long: the admin sees it grow);
    returns how many files were kept."""
    added, size = await store.add_listed(batch, once)
    if added:
        await rt.state.add_to_run(c.id, "files_listed", added, bytes_listed=size)
    return added


def _close(parts) -> None:
    try:
        parts.close()
    except ValueError:
        pass  # still running in its thread (the scan was cancelled): it ends on its own
