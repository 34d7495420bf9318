"""The operator CLI: the same API, from a shell; `up` runs and supervises the services.
Tables by default, `-o json` for scripts (the API's JSON, as the CLI always printed it), edits
refused in plain words naming the field, and a live progress bar when attached to a terminal."""
from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.helpers import bucket_tree, new_connector, write
from tests.fixtures.proxy import slowed_s3
from tests.fixtures.stack import ROOT, Stack

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

    listed = cli(stack, "connectors", "list")  # a table
    assert "from file" in listed.stdout and samba.password not in listed.stdout
    as_json = cli(stack, "connectors", "list", "-o", "json")
    assert cid in {c["id"] for c in json.loads(as_json.stdout)}
    paused = cli(stack, "connectors", "pause", cid)
    assert json.loads(paused.stdout)["status"]["state"] == "paused"
    refused = cli(stack, "connectors", "sync", cid)
    assert refused.returncode != 0 and "paused" in refused.stderr


def test_tables_by_default_and_json_for_scripts(stack, samba):
    write(samba.share_dir / "cli-tables", "a.txt", b"a")
    cid = new_connector(stack.api(), samba, "cli-tables", "cli-tables")["id"]
    assert cli(stack, "connectors", "pause", cid).returncode == 0

    table = cli(stack, "connectors", "list", "--state", "paused")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if cid in line)
    assert "cli-tables" in row and "paused" in row and "smb" in row
    assert "NAME" in table.stdout and "STATE" in table.stdout and "LAST SUCCESS" in table.stdout
    with pytest.raises(ValueError):
        json.loads(table.stdout)

    for args in (("connectors", "list", "--state", "paused", "-o", "json"),
                 ("-o", "json", "connectors", "list", "--state", "paused"),
                 ("--output", "json", "connectors", "list", "--state", "paused")):
        listed = cli(stack, *args)
        assert listed.returncode == 0, listed.stderr
        views = {c["id"]: c for c in json.loads(listed.stdout)}
        assert views[cid]["status"]["state"] == "paused"

    shown = cli(stack, "connectors", "show", cid)
    assert "cli-tables" in shown.stdout and "paused" in shown.stdout
    as_json = cli(stack, "connectors", "show", cid, "-o", "json")
    # byte for byte what the CLI always printed: json.dumps(indent=2, ensure_ascii=False)
    view = json.loads(as_json.stdout)
    assert as_json.stdout == json.dumps(view, indent=2, ensure_ascii=False) + "\n"
    assert view["id"] == cid and view["status"]["state"] == "paused"

    for args, header in ((("connectors", "failures", cid), "no failures"),
                         (("connectors", "held-deletes", cid), "no deletions are held"),
                         (("conflicts", "list", "--connector", cid), "no conflicts"),
                         (("shares", "list"), "cli-tables"),
                         (("audit", "--connector", cid), "connector.paused")):
        out = cli(stack, *args)
        assert out.returncode == 0 and header in out.stdout, (args, out.stdout, out.stderr)
        assert isinstance(json.loads(cli(stack, *args, "-o", "json").stdout), list | dict)


def test_edit_changes_only_what_is_given_and_names_a_refused_field(stack, samba, tmp_path):
    write(samba.share_dir / "cli-edit", "a.txt", b"a")
    cid = new_connector(stack.api(), samba, "cli-edit", "cli-edit", schedule="1h")["id"]
    edited = cli(stack, "connectors", "edit", cid, "--schedule", "2h", "--max-delete-percent",
                 "30", "-o", "json")
    assert edited.returncode == 0, edited.stderr
    view = json.loads(edited.stdout)
    assert (view["schedule"], view["max_delete_percent"], view["name"]) == (
        "2h", 30, "cli-edit")

    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"name": "renamed", "schedule": "6h"}))
    table = cli(stack, "connectors", "edit", cid, "--file", str(patch), "--schedule", "3h")
    assert table.returncode == 0, table.stderr
    assert "renamed" in table.stdout and "3h" in table.stdout  # the flag wins over the file
    view = stack.api().get(f"/connectors/{cid}").json()
    assert (view["name"], view["schedule"], view["max_delete_percent"]) == ("renamed", "3h", 30)

    bad = cli(stack, "connectors", "edit", cid, "--schedule", "every tuesday")
    assert bad.returncode == 1 and "schedule:" in bad.stderr, bad.stderr
    assert "schedule: use an interval like" in bad.stderr and "{" not in bad.stderr  # plain
    too_many = cli(stack, "connectors", "edit", cid, "--max-delete-percent", "150")
    assert too_many.returncode == 1 and "max_delete_percent:" in too_many.stderr
    assert stack.api().get(f"/connectors/{cid}").json()["schedule"] == "3h"
    nothing = cli(stack, "connectors", "edit", cid)
    assert nothing.returncode != 0 and "nothing to change" in nothing.stderr


def test_every_command_explains_itself(stack):
    for args in ((), ("connectors",), ("connectors", "edit"), ("connectors", "sync"),
                 ("conflicts", "resolve"), ("shares", "create"), ("audit",)):
        out = cli(stack, *args, "--help")
        assert out.returncode == 0 and "usage:" in out.stdout, args
    edit = cli(stack, "connectors", "edit", "--help").stdout
    for option in ("--schedule", "--sync-mode", "--admin-emails", "--conflict-policy",
                   "--max-delete-percent", "--name", "--password-stdin", "--file", "--output"):
        assert option in edit


@pytest.fixture
def slow_stack(s3, graph, smtp, tmp_path_factory):
    with slowed_s3(s3, 2 * 1024 * 1024) as via:  # 2,000 files of 8 KiB: ~8 s of uploads
        st = Stack(via, tmp_path_factory.mktemp("cli-progress"), graph, smtp).start()
        yield st
        st.stop()


def test_sync_wait_shows_a_progress_bar_on_a_terminal(slow_stack, samba):
    root = samba.share_dir / "cli-progress"
    for i in range(2000):
        write(root, f"d{i % 20:02d}/f{i:04d}.bin", bytes([i % 251]) * 8 * 1024)
    cid = new_connector(slow_stack.api(), samba, "cli-progress", "cli-progress")["id"]
    code, screen = in_a_terminal(slow_stack, "connectors", "sync", cid, "--wait",
                                 "--timeout", "240")
    assert code == 0, screen
    assert re.search(r"\d+/2000 files", screen), screen
    assert re.search(r"\b\d{1,2}\.\d%", screen) and "ETA" in screen, screen
    assert re.search(r"\d+(\.\d)? [KM]B/s", screen), screen  # throughput
    assert "run success" in screen and "2000 file(s) sent" in screen, screen


def in_a_terminal(stack, *args: str, timeout: float = 300) -> tuple[int, str]:
    """Run the CLI with stdout on a pseudo-terminal: its exit code and what it drew, without
    the terminal's control sequences."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", *args], cwd=ROOT,
                            env=stack.env | {"TERM": "xterm-256color", "COLUMNS": "120"},
                            stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal)
    os.close(terminal)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(controller)
    code = proc.wait(30)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", out.decode(errors="replace"))
    return code, text.replace("\r", "\n")


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
