"""A SharePoint connector lists its whole library again once its last full listing is
SCAIDRIVE_FULL_LISTING_DAYS old (a week, the stack's default): what Graph's change feed never
reported (users of Elastic's connectors saw deletions missed for good: #1822, #3994) reaches
ScaiDrive then, through every service against the Graph emulator."""
from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from shared.store.store import Store
from tests.e2e.helpers import bucket_tree
from tests.e2e.sharepoint_helpers import library_tree, new_site, new_sp_connector
from tests.fixtures.stack import REDIS_URL, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
DAY_S = 86_400


async def _listed_in_full(ns: str, cid: str, days_ago: float | None = None) -> float | None:
    """When the connector's library was last listed in full; set it `days_ago` first."""
    store = Store.connect(REDIS_URL, ns)
    try:
        cursor = await store.delta_positions.cursor(cid)
        if days_ago is not None:
            aged = dataclasses.replace(cursor, full_at=time.time() - days_ago * DAY_S)
            await store.delta_positions.save(cid, cursor, aged)
            cursor = aged
        return cursor.full_at
    finally:
        await store.close()


def test_a_weekly_full_listing_brings_in_what_the_change_feed_missed(stack, graph, s3):
    site = new_site(graph)
    drive = graph.add_library(site, "Documents")
    for i in range(10):
        graph.put_file(drive, f"Team/f{i}.txt", f"file {i}\n".encode())
    api = stack.api()
    cid = new_sp_connector(api, graph, site, "Documents", "sp-full-listing")["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    synced = bucket_tree(s3.client(), "sp-full-listing")

    # Three changes the feed never reports: a deletion, an edit, a new file.
    gone = graph.item(drive, "Team/f0.txt")
    graph.delete(drive, "Team/f0.txt")
    graph.hide_from_delta(gone, graph.put_file(drive, "Team/f1.txt", b"edited in SharePoint"),
                          graph.put_file(drive, "Team/unseen.txt", b"never in the feed"))
    graph.put_file(drive, "Team/seen.txt", b"in the feed")
    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert (progress["files_transferred"], progress["files_deleted"]) == (1, 0), progress
    assert bucket_tree(s3.client(), "sp-full-listing") == \
        synced | {"Team/seen.txt": library_tree(graph, drive)["Team/seen.txt"]}

    # A week after the last full listing: the whole library, reconciled.
    asyncio.run(_listed_in_full(stack.ns, cid, days_ago=7.01))
    started = time.time()
    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert (progress["files_transferred"], progress["files_deleted"],
            progress["files_errored"]) == (2, 1, 0), progress
    assert bucket_tree(s3.client(), "sp-full-listing") == library_tree(graph, drive)
    listed = asyncio.run(_listed_in_full(stack.ns, cid))
    assert listed is not None and listed >= started  # the clock starts again

    # And the next run takes the changes alone again.
    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert progress["files_transferred"] == 0 and progress["files_scanned"] == 11
    assert asyncio.run(_listed_in_full(stack.ns, cid)) == listed
