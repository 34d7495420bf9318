"""The store against the real Redis: each test gets its own namespace, removed afterwards.

The modules of CLUSTER_MODULES run twice, against the single server and against a Redis
Cluster of six nodes (tests/fixtures/redis_cluster.py, one for all of them: none stops a node,
and each test has its own namespace; ~6 s saved per module): the keys of one
connector share a slot there, and no script or transaction may span two. A test that reads
the single-mode layout itself (raw key names) is marked `single_layout` and runs once there.
The modules of SENTINEL_MODULES also run through sentinels (a master, its replica, three
sentinels: tests/fixtures/redis_sentinel.py, one per module), with single mode's keys, so
their `single_layout` tests too; test_sentinel_mode.py kills that master under the store.
"""
import secrets

import pytest

from shared.store.connection import connect
from shared.store.store import Store
from tests.fixtures.redis_cluster import start_cluster, stop_cluster
from tests.fixtures.redis_sentinel import redis_sentinel  # noqa: F401  (a fixture)
from tests.fixtures.stack import REDIS_URL

CLUSTER_MODULES = {"test_run_bookkeeping", "test_store_families", "test_claims",
                   "test_conflict_store", "test_job_context", "test_scan_store",
                   "test_key_rotation", "test_index_codec", "test_schedule_records",
                   "test_throttle_records", "test_store_cancellation", "test_delta_positions"}
SENTINEL_MODULES = {"test_run_bookkeeping", "test_store_families", "test_job_context",
                    "test_store_cancellation"}


def pytest_configure(config):
    config.addinivalue_line("markers", "single_layout: reads single mode's raw key names")


def pytest_generate_tests(metafunc):
    if "redis_mode" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    modes = ["single"]
    if module in CLUSTER_MODULES and not metafunc.definition.get_closest_marker("single_layout"):
        modes.append("cluster")
    if module in SENTINEL_MODULES:
        modes.append("sentinel")
    if len(modes) > 1:
        metafunc.parametrize("redis_mode", modes, indirect=True, scope="module")


@pytest.fixture(scope="session")
def state_cluster(tmp_path_factory):
    """The cluster every module of CLUSTER_MODULES runs against (the e2e failover tests kill
    nodes of their own cluster, `redis_cluster`)."""
    nodes = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield nodes
    stop_cluster(nodes)


@pytest.fixture(scope="module")
def redis_mode(request):
    return getattr(request, "param", "single")


@pytest.fixture
async def state(request, redis_mode):
    ns = "u" + secrets.token_hex(4)
    if redis_mode == "cluster":
        nodes = request.getfixturevalue("state_cluster")
        st = Store(connect(nodes.url, "cluster"), ns)
    elif redis_mode == "sentinel":
        st = Store.connect(request.getfixturevalue("redis_sentinel").url, ns, "sentinel")
    else:
        st = Store(connect(REDIS_URL, "single"), ns)
    yield st
    keys = [k async for k in st.r.scan_iter(f"{ns}:*")]
    if keys:
        await st.r.delete(*keys)
    await st.close()
