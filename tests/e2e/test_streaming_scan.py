"""A one-way scan bigger than one decision chunk (settings.scan_chunk: 1,000 files in production,
SCAN_CHUNK in the test stacks): moves, deletions, edits and repairs are decided a chunk at a time
from what the walk left in Redis, and still come out as they would over the whole tree at once."""
from __future__ import annotations

import os

import pytest
import redis

from tests.e2e.helpers import bucket_tree, dated_back, disk_tree, new_connector, write
from tests.fixtures.stack import REDIS_URL, SCAN_CHUNK, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e


def test_changes_spread_over_several_chunks(stack, samba, s3):
    root = samba.share_dir / "chunks"
    moving, staying = 13 * SCAN_CHUNK // 10, SCAN_CHUNK  # 2.3 chunks
    for i in range(moving):
        write(root, f"moving/d{i % 13}/f{i:04d}.txt", f"moving {i}\n".encode())
    for i in range(staying):
        write(root, f"staying/f{i:04d}.txt", f"staying {i}\n".encode())
    dated_back(root)
    api = stack.api()
    cid = new_connector(api, samba, "chunks", "chunks")["id"]
    view = wait_run(api, cid)
    assert view["status"]["progress"]["files_transferred"] == moving + staying

    os.rename(root / "moving", root / "moved")  # same SMB file ids: every one a move
    deleted = range(0, staying, 4)
    for i in deleted:
        (root / f"staying/f{i:04d}.txt").unlink()  # 11% of the files
    write(root, "staying/f0001.txt", b"edited")
    s3.client().remove_object("chunks", "staying/f0002.txt")  # gone behind our back
    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert (progress["files_moved"], progress["files_deleted"],
            progress["files_transferred"], progress["files_errored"]) == \
        (moving, len(deleted), 2, 0), progress
    assert progress["bytes_transferred"] == len(b"edited") + len(b"staying 2\n")
    assert bucket_tree(s3.client(), "chunks") == disk_tree(root)

    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert (progress["files_scanned"], progress["files_transferred"],
            progress["files_moved"], progress["files_deleted"]) == \
        (moving + staying - len(deleted), 0, 0, 0), progress
    # The scan's working set in Redis is gone once the scan is done.
    left = redis.Redis.from_url(REDIS_URL).keys(f"{stack.ns}:scan:{cid}:*")
    assert left == []
