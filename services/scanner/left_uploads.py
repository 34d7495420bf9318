"""Uploads a killed worker left for files gone from the source since: aborted, and their
records forgotten, once a listing shows the file gone. No job will come for such a file (it
was never indexed, or its job gave up), so without this its parts would stay in the bucket and
its record in the store until the connector is deleted. A file the listing could not vouch for
(cut short, or under a folder it could not read) keeps its upload: the next run decides."""
from __future__ import annotations

import asyncio
import logging

from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.store.scan_listing import ScanStore
from shared.sync.model import Listing
from shared.sync.rules import deletable, unreadable

log = logging.getLogger(__name__)


async def abort_gone(rt: Runtime, c: Connector, listing: Listing, store: ScanStore) -> int:
    """Abort the uploads left for files this walk did not list: how many (one Redis request
    when none is left, as is usual)."""
    left = await rt.state.uploads.all(c.id)
    if not left:
        return 0
    unreadable_paths = unreadable(listing.failures)
    candidates = [p for p in left if deletable(p, listing.complete, unreadable_paths)]
    gone = set(candidates) - await store.listed_among(candidates)
    for path in gone:
        await asyncio.to_thread(rt.storage.abort_uploads, c.target_share, left[path].key)
        await rt.state.uploads.forget(c.id, path)
    if gone:
        log.info("%d uploads left by a worker aborted: their files are gone", len(gone),
                 extra={"connector_id": c.id})
    return len(gone)
