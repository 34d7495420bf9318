"""A transfer worker SIGKILLed while it writes ScaiDrive's version back to the file server leaves
the file server's copy whole: users never see a truncated file, the next run does not take a
partial file for an edit made at the source (no conflict offering bytes nobody wrote), and the
redelivered job finishes the push. The SMB link is slowed so the kill lands mid-write."""
from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from shared.sources.smb.writing import is_write_temp
from tests.e2e.helpers import bucket_tree, new_connector
from tests.e2e.test_two_way import put
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.stack import Stack, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
MB = 1024 * 1024
ORIGINAL = b"the report as the file server's users last saved it\n" * 2000


def wait_temp(folder, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(is_write_temp(n) and os.path.getsize(folder / n) >= at_least
                  for n in os.listdir(folder)):
        assert time.monotonic() < deadline, "the push to the file server never started"
        time.sleep(0.05)


def test_a_worker_killed_mid_push_leaves_the_file_servers_copy_whole(
        s3, samba, graph, smtp, tmp_path_factory):
    proxy = TcpProxy(samba.port, rate=1.5 * MB)  # writes towards Samba take seconds
    st = Stack(s3, tmp_path_factory.mktemp("push-kill"), graph, smtp).start(transfer_workers=1)
    try:
        api, folder = st.api(), samba.mkdir("push-kill")
        samba.write_file("push-kill/report.bin", ORIGINAL)
        via_proxy = SimpleNamespace(port=proxy.port, share=samba.share,
                                    username=samba.username, password=samba.password)
        cid = new_connector(api, via_proxy, "push-kill", "push-kill", sync_mode="two_way",
                            admin_emails=["ops@example.com"])["id"]
        assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"

        edited = os.urandom(12 * MB)
        put(s3, "push-kill", "report.bin", edited)  # a ScaiDrive user's new version
        assert api.post(f"/connectors/{cid}/sync").status_code == 202
        wait_temp(folder, 2 * MB)
        st.kill(st.workers()[0])

        assert (folder / "report.bin").read_bytes() == ORIGINAL  # whole, not truncated
        st.spawn("transfer")  # the unacked job is redelivered to it
        view = wait_run(api, cid, timeout=240)
        assert view["status"]["run"]["outcome"] == "success", (view["status"], st.logs()[-3000:])
        assert view["status"]["progress"]["files_conflicted"] == 0
        assert (folder / "report.bin").read_bytes() == edited

        view = sync_and_wait(api, cid)  # nothing left to do: no edit taken from a partial file
        assert view["status"]["progress"]["files_conflicted"] == 0
        assert view["status"]["progress"]["files_transferred"] == 0
        assert set(bucket_tree(s3.client(), "push-kill")) == {"report.bin"}  # no temp synced
        assert api.get("/conflicts", params={"connector": cid}).json() == []
    finally:
        st.stop()
        proxy.close()
