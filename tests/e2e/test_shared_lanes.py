"""Shared lanes (shared/messaging/lanes.py) on a stack with one shard per lane, so every
connector shares every queue: a huge initial sync still does not hold a small connector back,
and a paused connector's work is parked, neither lost nor going round the lane, while the
others sync; resumed, it comes back and its run ends with every file once."""
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
    wait_done,
)
from tests.fixtures.proxy import slowed_s3
from tests.fixtures.stack import REDIS_URL, Stack, wait_run

pytestmark = pytest.mark.e2e
KB = 1024
MB = 1024 * KB


@pytest.fixture(scope="module")
def one_lane_stack(s3, graph, smtp, tmp_path_factory):
    """One shard per lane, one transfer worker, S3 behind a 4 MB/s link (a 1,200-file tree of
    16 KiB takes ~5 s to send)."""
    with slowed_s3(s3, 4 * MB) as slow:
        st = Stack(slow, tmp_path_factory.mktemp("lanes"), graph, smtp,
                   SCAIDRIVE_LANES_MAIN="1", SCAIDRIVE_LANES_BULK="1").start(transfer_workers=1)
        yield st
        st.stop()


def parked_set(ns: str) -> set[str]:
    import redis
    return {m.decode() for m in redis.Redis.from_url(REDIS_URL).smembers(f"{ns}:parked")}


def test_a_huge_sync_in_the_same_queues_does_not_starve_a_small_one(one_lane_stack, samba, s3):
    st = one_lane_stack
    api = st.api()
    random_tree(samba, "lane-huge", 2000, size=16 * KB, dirs=20)
    random_tree(samba, "lane-tiny", 3, size=100, dirs=20)
    huge = new_connector(api, samba, "lane-huge", "lane-huge")["id"]
    wait_done(api, huge, 50)  # its first batch is under way, the other three are queued
    tiny = new_connector(api, samba, "lane-tiny", "lane-tiny")["id"]
    view = wait_run(api, tiny, timeout=120)
    assert view["status"]["progress"]["files_transferred"] == 3
    huge_run = run_of(api, huge)
    assert huge_run["phase"] != "finished", "the small sync waited for the huge one"
    assert huge_run["jobs_done"] < 2000
    assert wait_run(api, huge, timeout=300)["status"]["progress"]["files_transferred"] == 2000


def test_paused_work_is_parked_and_comes_back_on_resume(one_lane_stack, samba, s3):
    st = one_lane_stack
    api = st.api()
    root = random_tree(samba, "lane-paused", 1200, size=16 * KB, dirs=20)
    random_tree(samba, "lane-other", 5, size=100, dirs=20)
    cid = new_connector(api, samba, "lane-paused", "lane-paused")["id"]
    wait_done(api, cid, 100)
    assert api.post(f"/connectors/{cid}/pause").status_code in (200, 202)
    time.sleep(2)  # the worker sees the flag within a second; files in flight finish
    held = run_of(api, cid)["jobs_done"]
    assert held < 1200

    # While it is paused, another connector in the very same queues syncs at once.
    other = new_connector(api, samba, "lane-other", "lane-other")["id"]
    assert wait_run(api, other, timeout=60)["status"]["progress"]["files_transferred"] == 5
    assert run_of(api, cid)["jobs_done"] == held  # nothing of the paused one moved meanwhile
    lanes = ["identity.main.0", "identity.bulk.0", "transfer.main.0", "transfer.bulk.0"]
    depths = queue_depths(st.ns, [*lanes, f"parked.{cid}"])
    assert all(depths[q] == 0 for q in lanes), depths  # not going round a lane
    assert (depths[f"parked.{cid}"] or 0) >= 1, depths  # but set aside, whole
    assert parked_set(st.ns) == {cid}

    assert api.post(f"/connectors/{cid}/resume").status_code in (200, 202)
    view = wait_run(api, cid, timeout=240)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "success", "\n".join(
        line for line in st.logs().splitlines() if '"scheduler"' in line)[-4000:]
    assert progress["files_transferred"] == 1200 and progress["files_skipped"] == 0
    assert bucket_tree(s3.client(), "lane-paused") == disk_tree(root)
    deadline = time.monotonic() + 10
    while parked_set(st.ns) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not parked_set(st.ns)
    assert queue_depths(st.ns, [f"parked.{cid}"])[f"parked.{cid}"] is None  # deleted once empty
