"""Uploads a killed worker left that no job will take: aborted, and their records forgotten,
by the next run's scan. No job comes for a file the listing found gone (never indexed, or its
job gave up), nor for one it listed that got no change (its job gave up, and the index holds
the file as it is now: another worker's attempt, a later run, a both-sides-equal record), so
without this the parts would stay in the bucket and the record in the store until the
connector is deleted. A file the listing could not vouch for as gone (cut short, or under a
folder it could not read) keeps its upload, and so does every upload whose record was written
or changed after the scan read them (`left`): a job of this run's is under way with it."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.store.scan_listing import ScanStore
from shared.store.upload_records import OpenUpload
from shared.sync.model import Listing
from shared.sync.rules import deletable, unreadable

log = logging.getLogger(__name__)


async def left_before(rt: Runtime, c: Connector) -> dict[str, OpenUpload]:
    """The uploads left open, read before the scan publishes (one Redis request; none is
    left, as is usual, and the scan makes no other)."""
    return await rt.state.uploads.all(c.id)


async def abort_unused(rt: Runtime, c: Connector, listing: Listing, store: ScanStore,
                       left: dict[str, OpenUpload], published: Collection[str]) -> int:
    """Abort the uploads of `left` no job will take (`published`: the paths of `left` this
    scan published a change for): how many."""
    if not left:
        return 0
    now = await rt.state.uploads.all(c.id)
    still = [p for p, upload in left.items() if now.get(p) == upload]
    listed = await store.listed_among(still)
    unreadable_paths = unreadable(listing.failures)
    gone = [p for p in still if p not in listed and
            deletable(p, listing.complete, unreadable_paths)]
    unused = [p for p in still if p in listed and p not in published]
    for path in (*gone, *unused):
        await asyncio.to_thread(rt.storage.abort_uploads, c.target_share, left[path].key)
        await rt.state.uploads.forget(c.id, path)
    if gone or unused:
        log.info("uploads left by a worker aborted: %d for files gone, %d for files no job "
                 "will send", len(gone), len(unused), extra={"connector_id": c.id})
    return len(gone) + len(unused)
