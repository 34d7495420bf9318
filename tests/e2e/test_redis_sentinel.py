"""The whole stack through Redis Sentinel (SCAIDRIVE_REDIS_MODE=sentinel: a master, its replica
and three sentinels on loopback): a one-way run of a few hundred small files syncs byte for
byte, each file counted once, although the master is SIGKILLed mid-run and the sentinels
promote the replica (down after 2 s). S3 is reached through a slowed link so the kill lands
mid-run, and the run is seen to end after it. The services are not restarted: a connector
made afterwards syncs too."""
from __future__ import annotations

import time
from datetime import datetime

import pytest

from tests.e2e.failover_helpers import assert_synced, jobs_done, redis_stack, tree
from tests.e2e.helpers import new_connector, run_of
from tests.fixtures.redis_sentinel import redis_sentinel  # noqa: F401  (a fixture)

pytestmark = pytest.mark.e2e
KB = 1024
MB = 1024 * KB
FILES = 300


@pytest.fixture(scope="module")
def sentinel_stack(redis_sentinel, s3, graph, smtp, tmp_path_factory):  # noqa: F811
    """The services on the sentinels, S3 behind a link of 512 KB/s a connection, so 300 files
    of 32 KiB are still being sent when the master is killed."""
    with redis_stack("sentinel", redis_sentinel.url, s3, graph, smtp, tmp_path_factory,
                     rate=MB // 2) as st:
        yield st


def test_a_master_killed_mid_run_loses_nothing_and_counts_nothing_twice(
        sentinel_stack, s3, samba, redis_sentinel):  # noqa: F811
    root = tree(samba, "rs-kill", FILES)
    api = sentinel_stack.api()
    cid = new_connector(api, samba, "rs-kill", "rs-kill")["id"]
    deadline = time.monotonic() + 60
    while jobs_done(api, cid) < 30:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    old = redis_sentinel.kill_master()  # mid-run: jobs_done() saw the run still open just before
    killed_at = time.time()
    new = redis_sentinel.wait_promoted(old, timeout=30)
    assert new == redis_sentinel.nodes[1]  # the replica took over
    assert_synced(sentinel_stack, api, s3, cid, "rs-kill", root, FILES, timeout=120)
    # The run was open when the master died: it ended after the kill (on the new master).
    assert datetime.fromisoformat(run_of(api, cid)["finished_at"]).timestamp() > killed_at

    # The same processes, on the new master: a connector made now syncs end to end.
    root = tree(samba, "rs-after", 20)
    cid = new_connector(api, samba, "rs-after", "rs-after")["id"]
    assert_synced(sentinel_stack, api, s3, cid, "rs-after", root, 20, timeout=120)
