"""What the Redis failover tests share (tests/e2e/test_redis_cluster.py, test_redis_sentinel.py):
a tree of random small files, the jobs done of a run that must still be open, and the check
that a run ended with every file once, byte for byte, and the share's usage exact."""
from __future__ import annotations

import os

from tests.e2e.helpers import bucket_tree, disk_tree, write
from tests.fixtures.stack import Stack, wait_run

SIZE = 32 * 1024


def tree(samba, folder: str, files: int):
    root = samba.share_dir / folder
    for i in range(files):
        write(root, f"d{i % 12:02d}/f{i:04d}.bin", os.urandom(SIZE))
    return root


def jobs_done(api, cid: str) -> int:
    """Jobs done so far of a run that is still going (the fault must land mid-run)."""
    run = api.get(f"/connectors/{cid}").json()["status"]["run"] or {}
    assert run.get("phase") != "finished", f"the run ended before the fault: {run}"
    return int(run.get("jobs_done", 0))


def assert_synced(st: Stack, api, s3, cid: str, name: str, root, files: int,
                  timeout: float = 240) -> None:
    view = wait_run(api, cid, timeout=timeout)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "success", st.logs()[-3000:]
    assert progress["files_transferred"] == files  # each file counted once
    assert progress["files_errored"] == 0
    assert progress["bytes_transferred"] == files * SIZE
    assert bucket_tree(s3.client(), name) == disk_tree(root)
    assert api.get(f"/shares/{name}").json()["usage_bytes"] == files * SIZE
