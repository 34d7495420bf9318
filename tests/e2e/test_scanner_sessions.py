"""A connector's runs reuse the scanner's SMB session while its configuration is unchanged (one
logon per config version, not per run: issue 17's cheap runs), and a changed password is never
served by the old session."""
from __future__ import annotations

import subprocess

import pytest

from tests.e2e.helpers import new_connector
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e


def connections_to(pid: int, port: int) -> set[str]:
    """Local ends of the process's established TCP connections to `port` (iproute2's `ss`)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"dport = :{port}"],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[2] for line in out.splitlines() if f"pid={pid}," in line}


def test_runs_reuse_the_scanners_session_until_the_config_changes(stack, samba):
    api, scanner = stack.api(), stack.procs["scanner"].pid
    others = connections_to(scanner, samba.port)  # other connectors' sessions, kept too
    samba.write_file("sessions/a.txt", b"a")
    cid = new_connector(api, samba, "sessions", "sessions")["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    mine = connections_to(scanner, samba.port) - others
    assert mine, "the scanner keeps no session between runs"

    assert sync_and_wait(api, cid)["status"]["run"]["outcome"] == "success"
    assert mine <= connections_to(scanner, samba.port)  # the same connection: no new logon

    # New credentials (the same password, saved again: a new config version) get a new session.
    resp = api.patch(f"/connectors/{cid}", json={"password": samba.password})
    assert resp.status_code == 200, resp.text
    assert sync_and_wait(api, cid)["status"]["run"]["outcome"] == "success"
    now = connections_to(scanner, samba.port)
    assert not now & mine, "the old session served the new configuration"
    assert now - others - mine, "no session for the new configuration"
