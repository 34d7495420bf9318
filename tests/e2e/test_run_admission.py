"""Run admission (issue 18): when many connectors fall due together, the scheduler starts only
as many runs as SCAIDRIVE_SCANS_WAITING_MAX lets wait for a scanner; the rest stay due and start
as the scanners catch up, oldest first. Without it thousands of due runs sat in the scan queue
and outlived their leases (abandoned runs at 2,000 connectors)."""
from __future__ import annotations

import time

import pytest

from tests.e2e.helpers import (
    bucket_tree,
    disk_tree,
    new_connector,
    queue_depths,
    random_tree,
    run_of,
)
from tests.fixtures.net import wait_port
from tests.fixtures.stack import Stack, wait_run

pytestmark = pytest.mark.e2e
WAITING_MAX = 3
CONNECTORS = 10


@pytest.fixture(scope="module")
def scannerless_stack(s3, graph, smtp, tmp_path_factory):
    """Every service but the scanner (a test starts it): the scans pile up."""
    st = Stack(s3, tmp_path_factory.mktemp("admission"), graph, smtp,
               SCAIDRIVE_SCANS_WAITING_MAX=str(WAITING_MAX), SCAIDRIVE_SCAN_CONCURRENCY="1")
    for service in ("api", "scheduler", "identity", "conflicts", "transfer"):
        st.spawn(service)
    wait_port(st.port, proc=st.procs["api"])
    yield st
    st.stop()


def test_due_runs_wait_for_a_free_scanner_and_all_of_them_run_once(scannerless_stack, samba,
                                                                    s3):
    st = scannerless_stack
    api = st.api()
    roots = {}
    ids = []
    for i in range(CONNECTORS):
        roots[f"adm-{i}"] = random_tree(samba, f"adm-{i}", 3, size=200, dirs=1)
        ids.append(new_connector(api, samba, f"adm-{i}", f"adm-{i}")["id"])  # due at once

    depths = []
    deadline = time.monotonic() + 4  # a dozen scheduler ticks with no scanner to take a scan
    while time.monotonic() < deadline:
        depths.append(queue_depths(st.ns, ["scan"])["scan"])
        time.sleep(0.2)
    assert max(depths) == WAITING_MAX, depths  # admitted up to the limit, never more
    started = {cid: run_id for cid in ids if (run_id := run_of(api, cid).get("run_id"))}
    assert len(started) == WAITING_MAX

    st.spawn("scanner")
    for cid in ids:
        view = wait_run(api, cid, timeout=120)
        assert view["status"]["run"]["outcome"] == "success", view["status"]
    for name, root in roots.items():
        assert bucket_tree(s3.client(), name) == disk_tree(root)
    # The runs admitted first are the ones that ended (none abandoned and started again).
    assert {cid: run_of(api, cid)["run_id"] for cid in started} == started
