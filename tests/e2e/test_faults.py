"""Faults survived mid-run, against the real servers: S3 and Redis unreachable for a while (a TCP
proxy in front of them is cut, the servers keep their data), RabbitMQ restarted, two
schedulers at once. After each, the reconciliation check: every source file in the bucket with
the right bytes, nothing extra, no multipart upload left open."""
from __future__ import annotations

import json
import subprocess
import time
from types import SimpleNamespace

import httpx
import pytest

from tests.e2e.helpers import (
    bucket_tree,
    disk_tree,
    new_connector,
    open_uploads,
    write,
    write_random,
)
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.stack import REDIS_URL, Stack, wait_run

pytestmark = pytest.mark.e2e
MB = 1024 * 1024


@pytest.fixture(scope="module")
def proxies(s3):
    redis_port = int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    out = SimpleNamespace(s3=TcpProxy(s3.port), redis=TcpProxy(redis_port))
    yield out
    out.s3.close()
    out.redis.close()


@pytest.fixture(scope="module")
def flaky(s3, graph, smtp, proxies, tmp_path_factory):
    """A stack whose S3 and Redis traffic goes through the proxies."""
    via_proxy = SimpleNamespace(endpoint=f"http://127.0.0.1:{proxies.s3.port}",
                                access_key=s3.access_key, secret_key=s3.secret_key)
    st = Stack(via_proxy, tmp_path_factory.mktemp("faults"), graph, smtp,
               SCAIDRIVE_REDIS_URL=f"redis://127.0.0.1:{proxies.redis.port}/0")
    st.start(transfer_workers=2)
    yield st
    st.stop()


def reconciled(s3, bucket: str, root) -> None:
    assert bucket_tree(s3.client(), bucket) == disk_tree(root)
    assert open_uploads(s3.client(), bucket) == []


def transferring(api, cid: str, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        run = api.get(f"/connectors/{cid}").json()["status"]["run"] or {}
        if run.get("phase") == "transferring" and run.get("jobs_done", 0) >= at_least:
            return
        assert run.get("phase") != "finished", f"the run ended before the fault: {run}"
        assert time.monotonic() < deadline, run
        time.sleep(0.05)


def tree(samba, folder: str, files: int) -> object:
    root = samba.share_dir / folder
    for i in range(files):
        write(root, f"d{i % 10}/f{i:04d}.bin", bytes([i % 256]) * 4096)
    write_random(root, "big.bin", 12 * MB)  # multipart (5 MB parts in tests)
    return root


def test_s3_unreachable_mid_run_waits_and_resumes(flaky, samba, s3, proxies):
    root = tree(samba, "s3-outage", 400)
    api = flaky.api()
    cid = new_connector(api, samba, "s3-outage", "s3-outage")["id"]
    transferring(api, cid, at_least=20)
    proxies.s3.cut()
    try:
        time.sleep(12)  # longer than a job's whole retry budget (3 deliveries in tests)
        run = api.get(f"/connectors/{cid}").json()["status"]["run"]
        assert run["phase"] == "transferring" and run["jobs_done"] < run["jobs_total"]
    finally:
        proxies.s3.restore()
    view = wait_run(api, cid, timeout=300)
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text
    assert view["status"]["progress"]["files_transferred"] == 401
    reconciled(s3, "s3-outage", root)


def test_redis_unreachable_mid_run_waits_and_resumes(flaky, samba, s3, proxies):
    root = tree(samba, "redis-outage", 400)
    api = flaky.api()
    cid = new_connector(api, samba, "redis-outage", "redis-outage")["id"]
    transferring(api, cid, at_least=20)
    proxies.redis.cut()
    try:
        time.sleep(10)
        unavailable = httpx.get(f"http://127.0.0.1:{flaky.port}/api/v1/connectors/{cid}",
                                headers={"Authorization": f"Bearer {flaky.token}"}, timeout=60)
        assert unavailable.status_code >= 500  # the API says so; it does not make things up
    finally:
        proxies.redis.restore()
    view = wait_run(api, cid, timeout=300)
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text
    progress = view["status"]["progress"]
    # A job whose upload landed but whose bookkeeping met the outage is redelivered and then
    # finds its work done: counted as skipped, not sent twice.
    assert progress["files_transferred"] + progress["files_skipped"] == 401
    reconciled(s3, "redis-outage", root)


def test_two_schedulers_start_one_run_at_a_time(flaky, samba, s3):
    root = tree(samba, "two-schedulers", 300)
    api = flaky.api()
    flaky.spawn("scheduler")  # a second scheduler, as after a botched deploy
    cid = new_connector(api, samba, "two-schedulers", "two-schedulers")["id"]
    for _ in range(10):  # impatient admins: every request lands while the run is going
        assert api.post(f"/connectors/{cid}/sync").status_code in (202, 409)
    view = wait_run(api, cid, timeout=300)
    time.sleep(2)  # any second run would have started by now
    started = [json.loads(line) for line in flaky.logs().splitlines()
               if line.startswith("{") and '"run started' in line and cid in line]
    assert len(started) == 1, started
    assert view["status"]["run"]["outcome"] == "success"
    reconciled(s3, "two-schedulers", root)


def test_rabbitmq_restart_mid_run_every_consumer_comes_back(stack, samba, s3):
    root = tree(samba, "mq-restart", 600)
    api = stack.api()
    alive = [p for p in stack.procs.values() if p.poll() is None]  # (others stopped by tests)
    cid = new_connector(api, samba, "mq-restart", "mq-restart")["id"]
    transferring(api, cid, at_least=20)
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=120)
    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)
    view = wait_run(api, cid, timeout=300)
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text
    reconciled(s3, "mq-restart", root)
    # Every stage consumes again: a connector made after the restart syncs end to end.
    write(samba.share_dir / "after-restart", "a.txt", b"after the restart")
    late = new_connector(api, samba, "after-restart", "after-restart")["id"]
    assert wait_run(api, late, timeout=120)["status"]["run"]["outcome"] == "success"
    assert all(p.poll() is None for p in alive)  # nobody had to be restarted
