"""The whole stack on a Redis Cluster (SCAIDRIVE_REDIS_MODE=cluster, six nodes on loopback): a
one-way run of a few hundred small files syncs byte for byte, and still does, each file counted
once, when the master holding the connector's keys is SIGKILLed mid-run and its replica takes
over (~8-9 s). S3 is reached through a slowed link so the kill lands mid-run."""
from __future__ import annotations

import time
from datetime import datetime

import pytest
import redis

from tests.e2e.failover_helpers import assert_synced, jobs_done, redis_stack, tree
from tests.e2e.helpers import new_connector, run_of
from tests.fixtures.net import wait_port
from tests.fixtures.redis_cluster import redis_cluster  # noqa: F401  (a fixture)

pytestmark = pytest.mark.e2e
KB = 1024
MB = 1024 * KB
FILES = 300


@pytest.fixture(scope="module")
def cluster_stack(redis_cluster, s3, graph, smtp, tmp_path_factory):  # noqa: F811
    """The services on the cluster, S3 behind a link of 3 MB/s (300 files of 32 KiB: ~3 s)."""
    with redis_stack("cluster", redis_cluster.url, s3, graph, smtp, tmp_path_factory,
                     rate=3 * MB) as st:
        yield st


def test_a_one_way_run_syncs_byte_for_byte_on_a_cluster(cluster_stack, s3, samba):
    root = tree(samba, "rc-plain", FILES)
    api = cluster_stack.api()
    cid = new_connector(api, samba, "rc-plain", "rc-plain")["id"]
    assert_synced(cluster_stack, api, s3, cid, "rc-plain", root, FILES)


def test_a_master_killed_mid_run_loses_nothing_and_counts_nothing_twice(cluster_stack, s3,
                                                                        samba, redis_cluster):  # noqa: F811
    root = tree(samba, "rc-kill", FILES)
    api = cluster_stack.api()
    cid = new_connector(api, samba, "rc-kill", "rc-kill")["id"]
    deadline = time.monotonic() + 120
    while jobs_done(api, cid) < 30:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # The master of the connector's slot (its keys are tagged {cid}): the run's own keys.
    rc = redis.cluster.RedisCluster.from_url(redis_cluster.url)
    port = int(rc.get_node_from_key("{" + cid + "}").port)
    rc.close()
    redis_cluster.kill(port)  # mid-run: jobs_done() saw the run still open just before
    killed_at = time.time()
    assert_synced(cluster_stack, api, s3, cid, "rc-kill", root, FILES)
    # The run was open when the master died: it ended after the kill.
    assert datetime.fromisoformat(run_of(api, cid)["finished_at"]).timestamp() > killed_at
    redis_cluster.wait_ok(timeout=30, quorum=3)  # a replica took over
    redis_cluster.start(port)  # back, as a replica (the stack's URL names the first node)
    wait_port(port, proc=redis_cluster.procs[port])
    redis_cluster.wait_ok(timeout=30, quorum=3)
