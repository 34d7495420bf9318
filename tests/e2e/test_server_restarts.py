"""Servers that really go away mid-run: Redis restarted (a private redis-server with its
append-only file, as docker-compose runs it), and the SMB connection dropped mid-listing or
mid-read (a TCP proxy in front of Samba that cuts once part of the listing or of a file has come
back)."""
from __future__ import annotations

import subprocess
import time
from types import SimpleNamespace

import pytest
import redis

from tests.e2e.helpers import (
    bucket_tree,
    dated_back,
    disk_tree,
    new_connector,
    open_uploads,
    write,
)
from tests.fixtures.net import free_port, wait_port
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.stack import Stack, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e


class RedisServer:
    """redis-server on a free port with AOF (fsync always): a restart keeps every write."""

    def __init__(self, workdir):
        self.port = free_port()
        self.cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", str(workdir), "--appendonly", "yes", "--appendfsync", "always",
                    "--save", ""]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)
        deadline = time.monotonic() + 30
        while True:  # loading the AOF: answers LOADING until done
            try:
                redis.Redis.from_url(self.url).ping()
                return self
            except redis.exceptions.BusyLoadingError:
                assert time.monotonic() < deadline
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def tree(samba, folder: str, folders: int, each: int):
    root = samba.share_dir / folder
    for d in range(folders):
        for i in range(each):
            write(root, f"d{d:03d}/f{i:03d}.txt", b"%d-%d" % (d, i))
    return dated_back(root)


def test_redis_restarted_mid_run_the_run_completes(s3, samba, graph, smtp, tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis-data")).start()
    st = Stack(s3, tmp_path_factory.mktemp("redis-restart"), graph, smtp,
               SCAIDRIVE_REDIS_URL=server.url).start(transfer_workers=2)
    try:
        root = tree(samba, "redis-restart", 20, 25)
        api = st.api()
        cid = new_connector(api, samba, "redis-restart", "redis-restart")["id"]
        while (api.get(f"/connectors/{cid}").json()["status"]["run"] or {}).get(
                "jobs_done", 0) < 30:
            time.sleep(0.05)
        server.stop()
        time.sleep(5)
        server.start()
        view = wait_run(api, cid, timeout=300)
        assert view["status"]["run"]["outcome"] == "success", \
            api.get(f"/connectors/{cid}/failures").text
        progress = view["status"]["progress"]
        assert progress["files_transferred"] + progress["files_skipped"] == 500
        assert bucket_tree(s3.client(), "redis-restart") == disk_tree(root)
        assert open_uploads(s3.client(), "redis-restart") == []
    finally:
        st.stop()
        server.stop()


def test_smb_dropped_mid_read_of_a_large_file_goes_on_where_it_stopped(stack, samba, s3):
    """The read goes on on a new connection: the file is sent whole, in the same run, without
    its first part read again (a redelivery would read 36 MiB more of a 48 MiB file)."""
    proxy = TcpProxy(samba.port)
    try:
        big = bytes(range(256)) * (48 * 4096)  # 48 MiB: six 8 MiB parts
        write(samba.share_dir / "smb-blip", "big.bin", big)
        write(samba.share_dir / "smb-blip", "small.txt", b"small")
        api = stack.api()
        via_proxy = SimpleNamespace(port=proxy.port, share=samba.share,
                                    username=samba.username, password=samba.password)
        proxy.drop_after(36 * 1024 * 1024)  # well into the large file's read
        cid = new_connector(api, via_proxy, "smb-blip", "smb-blip")["id"]
        view = wait_run(api, cid, timeout=300)
        assert view["status"]["run"]["outcome"] == "success", view["status"]
        assert proxy._cut_in is None, "the read finished before the drop: nothing was tested"
        assert view["status"]["progress"]["files_transferred"] == 2
        assert api.get(f"/connectors/{cid}/failures").json() == []
        body = s3.client().get_object("smb-blip", "big.bin")
        assert body.read() == big
        size = len(big)
        assert proxy.bytes_down < 1.3 * size, (proxy.bytes_down, size)  # read once, not twice
    finally:
        proxy.close()


def test_smb_dropped_mid_listing_deletes_nothing_and_the_next_run_recovers(stack, samba, s3):
    proxy = TcpProxy(samba.port)
    try:
        root = tree(samba, "smb-drop", 60, 30)
        api = stack.api()
        via_proxy = SimpleNamespace(port=proxy.port, share=samba.share,
                                    username=samba.username, password=samba.password)
        cid = new_connector(api, via_proxy, "smb-drop", "smb-drop")["id"]
        assert wait_run(api, cid, timeout=300)["status"]["run"]["outcome"] == "success"
        synced = bucket_tree(s3.client(), "smb-drop")
        assert synced == disk_tree(root)

        proxy.cut_after(64 * 1024)  # part of the next listing comes back, then the line drops
        view = sync_and_wait(api, cid)
        assert view["status"]["run"]["outcome"] != "success", view["status"]["run"]
        assert proxy.up is False, "the listing finished before the cut: nothing was tested"
        assert bucket_tree(s3.client(), "smb-drop") == synced  # nothing deleted, nothing damaged
        assert view["status"]["progress"]["files_deleted"] == 0

        proxy.restore()
        view = sync_and_wait(api, cid)
        assert view["status"]["run"]["outcome"] == "success", view["status"]
        assert view["status"]["progress"]["files_transferred"] == 0
        assert bucket_tree(s3.client(), "smb-drop") == disk_tree(root)
    finally:
        proxy.close()
