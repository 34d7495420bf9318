"""A connector's throttles hold across every transfer worker, against the real servers: two
workers, S3 behind a link slowed per connection (so transfers in parallel would finish together,
in series one after another).

- `bandwidth_limit: 2M`: 20 MiB in four files, taken by both workers, take ≥ 9 s;
- `bandwidth_limit: 1M` on a two-way connector: 6 MiB written back to the file server take
  ≥ 5 s (the write-back reads through the same limit as uploads);
- `max_parallel_transfers: 1`: never two of its files in flight (the Redis semaphore watched
  throughout, and the time: four files one after another), though both workers take them;
- `sync_windows`: a connector created outside its window does not run; it runs when the window
  (computed from now, in Europe/Berlin) opens.
"""
from __future__ import annotations

import io
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis

from tests.e2e.helpers import bucket_tree, disk_tree, new_connector, write_random
from tests.fixtures.proxy import slowed_s3
from tests.fixtures.stack import REDIS_URL, Stack, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
MB = 1024 * 1024


@pytest.fixture(scope="module")
def throttled_stack(s3, graph, smtp, tmp_path_factory):
    """Two transfer workers; S3 at 4 MiB/s per connection."""
    with slowed_s3(s3, 4 * MB) as slow:
        st = Stack(slow, tmp_path_factory.mktemp("throttles"), graph, smtp).start(
            transfer_workers=2)
        yield st
        st.stop()


def big_files(samba, folder: str, count: int, size: int):
    """`count` files of `size` (≥ 4 MiB: each a job of its own, for any worker to take)."""
    root = samba.share_dir / folder
    for i in range(count):
        write_random(root, f"f{i}.bin", size)
    return root


def workers_that_moved(st: Stack, cid: str) -> set[str]:
    """The transfer workers whose log shows a job of `cid` done."""
    return {path.stem for path in st.logdir.glob("transfer-*.log")
            if any('"job done"' in line and cid in line
                   for line in path.read_text(errors="replace").splitlines())}


def transfer_seconds(view: dict) -> float:
    run = view["status"]["run"]
    return (datetime.fromisoformat(run["finished_at"])
            - datetime.fromisoformat(run["started_at"])).total_seconds()


def test_a_bandwidth_limit_holds_across_two_workers(throttled_stack, samba, s3):
    st = throttled_stack
    root = big_files(samba, "bw-limit", 4, 5 * MB)
    api = st.api()
    cid = new_connector(api, samba, "bw-limit", "bw-limit", bandwidth_limit="2M")["id"]
    view = wait_run(api, cid, timeout=90)
    assert view["bandwidth_limit"] == "2M"
    assert view["status"]["run"]["outcome"] == "success", st.logs()[-3000:]
    assert view["status"]["progress"]["bytes_transferred"] == 20 * MB
    took = transfer_seconds(view)
    assert took >= 9.0, took  # 20 MiB at 2 MiB/s, less the bucket's first chunk (256 KiB)
    assert took < 30, took
    assert workers_that_moved(st, cid) == set(st.workers())  # both took files
    assert bucket_tree(s3.client(), "bw-limit") == disk_tree(root)


def test_a_bandwidth_limit_paces_writes_back_to_the_file_server(throttled_stack, samba, s3):
    api = throttled_stack.api()
    root = samba.write_file("bw-push/seed.txt", b"seed").parent  # writable by the account
    cid = new_connector(api, samba, "bw-push", "bw-push", sync_mode="two_way",
                        bandwidth_limit="1M")["id"]
    assert wait_run(api, cid, timeout=90)["status"]["run"]["outcome"] == "success"
    data = os.urandom(6 * MB)
    s3.client().put_object("bw-push", "from-scaidrive.bin", io.BytesIO(data), len(data))
    started = time.monotonic()
    view = sync_and_wait(api, cid, timeout=90)
    took = time.monotonic() - started
    assert view["status"]["run"]["outcome"] == "success", view["status"]
    assert (root / "from-scaidrive.bin").read_bytes() == data
    assert took >= 5.0, took  # 6 MiB at 1 MiB/s less the first chunk; unpaced: < 1 s


def test_one_file_in_flight_across_two_workers(throttled_stack, samba, s3):
    st = throttled_stack
    root = big_files(samba, "one-at-a-time", 4, 4 * MB)
    api = st.api()
    r = redis.Redis.from_url(REDIS_URL)
    most, seen, done = [0], [0], threading.Event()

    def watch(key: str) -> None:
        while not done.is_set():
            holders = r.zcard(key)
            most[0], seen[0] = max(most[0], holders), seen[0] + bool(holders)
            time.sleep(0.005)

    cid = new_connector(api, samba, "one-at-a-time", "one-at-a-time",
                        max_parallel_transfers=1)["id"]
    watcher = threading.Thread(target=watch, args=(f"{st.ns}:slots:{cid}",), daemon=True)
    watcher.start()
    try:
        view = wait_run(api, cid, timeout=90)
    finally:
        done.set()
        watcher.join(5)
    assert view["max_parallel_transfers"] == 1
    assert view["status"]["run"]["outcome"] == "success", st.logs()[-3000:]
    assert most[0] == 1 and seen[0] > 10  # held throughout, never by two
    # Each file takes ~1 s over its own slowed connection: in series, four of them ≥ 4 s.
    assert transfer_seconds(view) >= 3.5
    assert len(workers_that_moved(st, cid)) == 2
    assert bucket_tree(s3.client(), "one-at-a-time") == disk_tree(root)
    assert r.zcard(f"{st.ns}:slots:{cid}") == 0


def test_a_run_waits_for_its_window(throttled_stack, samba, s3):
    st = throttled_stack
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime.now(berlin)
    # The next whole minute at least 8 s away: the window opens then, for ten minutes.
    opens = (now + timedelta(seconds=68)).replace(second=0, microsecond=0)
    if (opens - now).total_seconds() > 68:
        opens -= timedelta(minutes=1)
    closes = opens + timedelta(minutes=10)
    window = {"days": [opens.strftime("%a").lower()], "start": f"{opens:%H:%M}",
              "end": f"{closes:%H:%M}"}
    root = samba.share_dir / "night-only"
    write_random(root, "a.bin", 64 * 1024)
    api = st.api()
    cid = new_connector(api, samba, "night-only", "night-only", sync_windows={
        "timezone": "Europe/Berlin", "windows": [window]})["id"]
    view = api.get(f"/connectors/{cid}").json()
    assert view["sync_windows"]["windows"][0]["start"] == window["start"]
    while datetime.now(UTC) < opens - timedelta(seconds=1.5):  # due now, but outside
        view = api.get(f"/connectors/{cid}").json()
        assert view["status"]["run"] is None, "a run started outside its window"
        time.sleep(0.5)
    assert datetime.fromisoformat(view["status"]["next_due_at"]) == opens  # when it opens
    view = wait_run(api, cid, timeout=60)
    started = datetime.fromisoformat(view["status"]["run"]["started_at"])
    assert opens <= started < opens + timedelta(seconds=10)
    assert view["status"]["run"]["outcome"] == "success", st.logs()[-3000:]
    assert bucket_tree(s3.client(), "night-only") == disk_tree(root)
