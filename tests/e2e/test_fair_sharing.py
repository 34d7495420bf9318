"""Fair sharing: one connector's huge initial sync does not hold another connector's changes
back, at any stage (each connector has its own identity and transfer queue)."""
from __future__ import annotations

import time

import pytest

from tests.e2e.helpers import new_connector, write
from tests.fixtures.stack import wait_run

pytestmark = pytest.mark.e2e


def test_a_huge_initial_sync_does_not_starve_a_small_one(stack, samba, s3):
    for i in range(1500):
        write(samba.share_dir / "huge", f"d{i % 30}/f{i:05d}.bin", b"h" * 2048)
    for i in range(3):
        write(samba.share_dir / "tiny", f"t{i}.txt", b"tiny")
    api = stack.api()
    huge = new_connector(api, samba, "huge", "huge")["id"]
    deadline = time.monotonic() + 120
    while True:  # the huge run is under way: its jobs are queued ahead of anything else
        run = api.get(f"/connectors/{huge}").json()["status"]["run"] or {}
        if run.get("phase") == "transferring" and run.get("jobs_done", 0) > 20:
            break
        assert time.monotonic() < deadline, run
        time.sleep(0.1)

    tiny = new_connector(api, samba, "tiny", "tiny")["id"]
    view = wait_run(api, tiny, timeout=120)
    huge_run = api.get(f"/connectors/{huge}").json()["status"]["run"]
    assert view["status"]["progress"]["files_transferred"] == 3
    assert huge_run["phase"] != "finished", "the small sync waited for the huge one"
    assert huge_run["jobs_done"] < huge_run["jobs_total"]
    assert wait_run(api, huge, timeout=300)["status"]["progress"]["files_transferred"] == 1500
