"""What the Redis failover tests share (tests/e2e/test_redis_cluster.py, test_redis_sentinel.py):
the stack on Redis in cluster or sentinel mode, a tree of random small files, the jobs done of a
run that must still be open, and the check that a run ended with every file once, byte for
byte, and the share's usage exact."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.e2e.helpers import bucket_tree, disk_tree, random_tree, run_of
from tests.fixtures.proxy import slowed_s3
from tests.fixtures.stack import Stack, wait_run

SIZE = 32 * 1024


@contextmanager
def redis_stack(mode: str, url: str, s3, graph, smtp, tmp_path_factory, *,
                rate: float) -> Iterator[Stack]:
    """The services on Redis in `mode` ("cluster", "sentinel") at `url`, two transfer workers,
    S3 behind a link of `rate` bytes/s (so a fault lands mid-run)."""
    with slowed_s3(s3, rate) as slow:
        st = Stack(slow, tmp_path_factory.mktemp(f"redis-{mode}-stack"), graph, smtp,
                   SCAIDRIVE_REDIS_MODE=mode, SCAIDRIVE_REDIS_URL=url).start(transfer_workers=2)
        yield st
        st.stop()


def tree(samba, folder: str, files: int):
    """`files` random files of SIZE bytes (what `assert_synced` counts) under `folder`."""
    return random_tree(samba, folder, files, size=SIZE, dirs=12)


def jobs_done(api, cid: str) -> int:
    """Jobs done so far of a run that is still going (the fault must land mid-run)."""
    run = run_of(api, cid)
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
