"""The services survive the RabbitMQ node they use dying, on a real 3-node cluster
(tests/fixtures/rabbit_cluster.py): SCAIDRIVE_AMQP_URL lists the three nodes, the node in use is
SIGKILLed mid-run, and the broker (shared/messaging/failover.py) moves to another node, restores
its topology and consumers, and publishes wait meanwhile. The quorum queues live on all three
nodes, so no message is lost; a delivery left unacked is redelivered and handled idempotently."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from shared.contracts import ScanRequested
from shared.messaging.broker import Broker
from tests.e2e.helpers import bucket_tree, disk_tree, new_connector, write
from tests.fixtures.proxy import slowed_s3
from tests.fixtures.rabbit_cluster import RabbitCluster
from tests.fixtures.stack import Stack, wait_run

pytestmark = pytest.mark.e2e
KB = 1024
MB = 1024 * KB
FILES = 300
SIZE = 16 * KB


@pytest.fixture(scope="module")
def cluster():
    c = RabbitCluster().start()
    yield c
    c.stop()


async def _survives_a_node(cluster: RabbitCluster, ns: str) -> list[str]:
    """A broker on the cluster consumes its scan queue, the node it uses is killed, and
    messages published before and after the kill all arrive."""
    broker = await Broker(cluster.url_list, ns).connect()
    got: list[str] = []

    async def handler(msg, _raw) -> None:
        got.append(msg.connector_id)

    try:
        await broker.consume(broker.queues["scan"], handler, prefetch=4)
        await broker.publish("commands", "scan", ScanRequested(connector_id="before", run_id="r1"))
        cluster.kill(0)
        await broker.publish("commands", "scan", ScanRequested(connector_id="after", run_id="r2"))
        for _ in range(200):
            if "after" in got:
                break
            await asyncio.sleep(0.1)
        return got
    finally:
        await broker.close()


def test_a_broker_moves_to_another_node_with_its_consumers(cluster):
    started = time.monotonic()
    try:
        got = asyncio.run(_survives_a_node(cluster, "tfail" + os.urandom(3).hex()))
    finally:
        cluster.restart(0)  # the next test needs all three (a quorum must survive its kill)
    assert "before" in got and "after" in got, got
    assert time.monotonic() - started < 60


@pytest.fixture
def slow_s3(s3):
    """S3 behind a slowed link: the run lasts long enough for a kill to land mid-run."""
    with slowed_s3(s3, 1 * MB) as slow:
        yield slow


def jobs_done(api, cid: str) -> dict:
    return api.get(f"/connectors/{cid}").json()["status"]["run"] or {}


def test_a_sync_survives_the_broker_node_dying(cluster, slow_s3, s3, samba, graph, smtp,
                                                 tmp_path_factory):
    root = samba.share_dir / "rabbit-cluster"
    for i in range(FILES):
        write(root, f"d{i % 10}/f{i:04d}.bin", os.urandom(SIZE))
    st = Stack(slow_s3, tmp_path_factory.mktemp("cluster"), graph, smtp,
               SCAIDRIVE_AMQP_URL=cluster.url_list).start(transfer_workers=1)
    try:
        api = st.api()
        cid = new_connector(api, samba, "rabbit-cluster", "rabbit-cluster")["id"]
        deadline = time.monotonic() + 90
        while (run := jobs_done(api, cid)).get("jobs_done", 0) < FILES // 5:
            assert run.get("phase") != "finished", f"the run ended before the kill: {run}"
            assert time.monotonic() < deadline, run
            time.sleep(0.05)
        cluster.kill(0)  # every service is connected to the first node that answered: this one
        view = wait_run(api, cid, timeout=120)
        progress = view["status"]["progress"]
        assert view["status"]["run"]["outcome"] == "success", (view["status"], st.logs()[-3000:])
        assert progress["files_transferred"] == FILES  # nothing counted twice
        assert progress["files_errored"] == 0
        assert bucket_tree(s3.client(), "rabbit-cluster") == disk_tree(root)
        logs = st.logs()
        assert "broker node not back; trying" in logs  # the services did fail over
        assert "guest:guest@" not in logs  # URLs are logged without their credentials
    finally:
        st.stop()
