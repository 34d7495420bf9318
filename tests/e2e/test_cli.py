"""The operator CLI: the same API, from a shell; `up` runs and supervises the services."""
from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.helpers import bucket_tree, write
from tests.fixtures.stack import ROOT

pytestmark = pytest.mark.e2e


def cli(stack, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT,
                          env=stack.env | (env or {}), capture_output=True, text=True, timeout=300)


def test_create_from_file_sync_wait_and_pause(stack, samba, s3, tmp_path):
    write(samba.share_dir / "cli", "report.txt", b"from the cli")
    assert cli(stack, "shares", "create", "cli-share").returncode == 0
    spec = tmp_path / "connector.json"
    spec.write_text(json.dumps({
        "name": "from file", "kind": "smb",
        "server": f"smb://127.0.0.1:{samba.port}/{samba.share}/cli",
        "username": samba.username, "password": samba.password, "target_share": "cli-share",
        "schedule": "1h"}))
    created = cli(stack, "connectors", "create", "--file", str(spec))
    assert created.returncode == 0, created.stderr
    cid = json.loads(created.stdout)["id"]

    synced = cli(stack, "connectors", "sync", cid, "--wait", "--timeout", "120")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["run"]["outcome"] == "success"
    assert bucket_tree(s3.client(), "cli-share") == {
        "report.txt": hashlib.sha256(b"from the cli").hexdigest()}

    listed = cli(stack, "connectors", "list")
    assert "from file" in listed.stdout and samba.password not in listed.stdout
    paused = cli(stack, "connectors", "pause", cid)
    assert json.loads(paused.stdout)["status"]["state"] == "paused"
    refused = cli(stack, "connectors", "sync", cid)
    assert refused.returncode != 0 and "paused" in refused.stderr


def test_up_runs_every_service_and_restarts_a_dead_one(stack):
    up = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--no-api",
                           "--transfer-workers", "2"], cwd=ROOT, env=stack.env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        children = _children(up.pid, expect=6)
        victim = children[-1]
        subprocess.run(["kill", "-9", str(victim)])
        replaced = _children(up.pid, expect=6, without=victim)
        assert victim not in replaced
    finally:
        up.send_signal(signal.SIGTERM)
        assert up.wait(30) == 0
    assert _pids_alive(replaced) == []


def _children(pid: int, expect: int, without: int | None = None, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        kids = [int(p) for p in out.split()]
        if len(kids) == expect and without not in kids:
            return kids
        time.sleep(0.2)
    raise AssertionError(f"expected {expect} service processes under {pid}, saw {kids}")


def _pids_alive(pids: list) -> list:
    alive = []
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                if "State:\tZ" not in f.read():
                    alive.append(p)
        except FileNotFoundError:
            pass
    return alive
