"""A ScaiDrive edit that lands while a two-way run uploads the file server's edit of the same
file (after the transfer checked that the object is still the version the scan saw, before its
PUT lands) is kept: the PUT is conditional on that version (If-Match), the S3 server refuses
it, and the file becomes a conflict with both edits kept. Before, the check and the write were
two requests and the upload overwrote the edit. Real Samba, moto, RabbitMQ and Redis; the
upload is slowed by the connector's bandwidth limit so that the edit lands inside it."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.e2e.test_two_way import counts, put, two_way
from tests.fixtures.stack import wait_run

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024


def wait_for_request(log: Path, offset: int, line: str, timeout: float = 60) -> None:
    """Until the S3 server's access log, past `offset`, shows a request starting `line`."""
    deadline = time.monotonic() + timeout
    while line not in log.read_bytes()[offset:].decode(errors="replace"):
        assert time.monotonic() < deadline, f"no {line!r} request within {timeout} s"
        time.sleep(0.02)


def test_an_edit_in_scaidrive_during_the_upload_is_a_conflict_not_overwritten(
        stack, samba, s3):
    api, root = stack.api(), samba.path("tw-race")
    cid = two_way(api, samba, "tw-race", {"report.bin": b"as synced"}, bandwidth_limit="1M")
    share_edit = os.urandom(4 * MiB)  # ~4 s to read at 1 MiB/s: one PUT, not multipart
    samba.write_file("tw-race/report.bin", share_edit)
    log = Path(s3.log_path)
    offset = log.stat().st_size
    before = api.get(f"/connectors/{cid}").json()["status"]["run"]["run_id"]
    assert api.post(f"/connectors/{cid}/sync").status_code == 202

    wait_for_request(log, offset, '"HEAD /tw-race/report.bin')  # checked: still as scanned
    put(s3, "tw-race", "report.bin", b"ScaiDrive's edit, made during the upload")
    view = wait_run(api, cid, after=before)

    assert counts(view) == {"files_conflicted": 1}, api.get(f"/connectors/{cid}/failures").text
    kept = s3.client().get_object("tw-race", "report.bin")
    try:
        assert kept.read() == b"ScaiDrive's edit, made during the upload"
    finally:
        kept.close()
        kept.release_conn()
    assert (root / "report.bin").read_bytes() == share_edit
    conflicts = api.get(f"/conflicts?connector={cid}&state=open").json()
    assert [c["path"] for c in conflicts] == ["report.bin"]
