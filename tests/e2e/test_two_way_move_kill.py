"""A transfer worker SIGKILLed in the middle of a rename at the file server (a file ScaiDrive's
user renamed): the server has renamed the file, but the worker dies before it hears so or
records it. The job is redelivered to another worker, which finds the rename landed (the same
file, by its id and content, at the new name) and finishes: the file is moved once, its bytes
and inode untouched, counted once, nothing sent, nothing left at the old name, and the next run
has nothing to do. The proxy between the services and Samba withholds the rename's answer, so
the kill lands exactly there."""
from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from tests.e2e.helpers import bucket_tree, disk_tree, new_connector
from tests.e2e.test_two_way_renames import progress, rename_in_scaidrive
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.stack import Stack, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
SET_INFO = 0x0011  # MS-SMB2 2.2.1: the rename's request (FileRenameInformation)


def test_a_worker_killed_mid_rename_moves_the_file_once(s3, samba, graph, smtp,
                                                        tmp_path_factory):
    proxy = TcpProxy(samba.port)
    st = Stack(s3, tmp_path_factory.mktemp("move-kill"), graph, smtp).start(transfer_workers=1)
    try:
        api, folder = st.api(), samba.mkdir("move-kill")
        data = os.urandom(300_000)
        samba.write_file("move-kill/drafts/report.bin", data)
        samba.write_file("move-kill/other.txt", b"other")
        via_proxy = SimpleNamespace(port=proxy.port, share=samba.share,
                                    username=samba.username, password=samba.password)
        cid = new_connector(api, via_proxy, "move-kill", "move-kill", sync_mode="two_way",
                            admin_emails=["ops@example.com"],
                            smb_encryption="off")["id"]  # unsealed: the proxy reads commands
        first = wait_run(api, cid)["status"]["run"]
        assert first["outcome"] == "success"
        inode = (folder / "drafts/report.bin").stat().st_ino

        rename_in_scaidrive(s3, "move-kill", "drafts/report.bin", "final/report.bin")
        proxy.stall_on_smb2(SET_INFO)
        assert api.post(f"/connectors/{cid}/sync").status_code == 202
        deadline = time.monotonic() + 60
        while not (folder / "final/report.bin").exists():  # renamed; its answer withheld
            assert time.monotonic() < deadline, st.logs()[-3000:]
            time.sleep(0.05)
        st.kill(st.workers()[0])
        proxy.stall_on_smb2(None)

        st.spawn("transfer")  # the unacked job is redelivered to it
        view = wait_run(api, cid, after=first["run_id"], timeout=240)
        assert view["status"]["run"]["outcome"] == "success", (view["status"], st.logs()[-3000:])
        assert progress(view) == {"files_moved": 1}, api.get(f"/connectors/{cid}/failures").text
        moved = folder / "final/report.bin"
        assert moved.stat().st_ino == inode and moved.read_bytes() == data
        assert not (folder / "drafts").exists()  # emptied by the move, removed
        assert disk_tree(folder) == bucket_tree(s3.client(), "move-kill")
        assert progress(sync_and_wait(api, cid)) == {}
    finally:
        st.stop()
        proxy.close()
