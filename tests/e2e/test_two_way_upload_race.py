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


def sync_with_edit_during(api, s3, cid: str, request: str, bucket: str, key: str,
                          edit: bytes, query: str = "") -> dict:
    """A run of connector `cid`, with `edit` written to ScaiDrive's `key` as soon as the S3
    server's log shows the run's `request` for it (with `query`): the run's view once done."""
    log = Path(s3.log_path)
    offset = log.stat().st_size
    before = api.get(f"/connectors/{cid}").json()["status"]["run"]["run_id"]
    assert api.post(f"/connectors/{cid}/sync").status_code == 202
    wait_for_request(log, offset, f'"{request} /{bucket}/{key}{query}')
    put(s3, bucket, key, edit)
    return wait_run(api, cid, after=before)


def object_bytes(s3, bucket: str, key: str) -> bytes:
    kept = s3.client().get_object(bucket, key)
    try:
        return kept.read()
    finally:
        kept.close()
        kept.release_conn()


def test_an_edit_in_scaidrive_during_the_upload_is_a_conflict_not_overwritten(
        stack, samba, s3):
    api, root = stack.api(), samba.path("tw-race")
    cid = two_way(api, samba, "tw-race", {"report.bin": b"as synced"}, bandwidth_limit="1M")
    share_edit = os.urandom(4 * MiB)  # ~4 s to read at 1 MiB/s: one PUT, not multipart
    samba.write_file("tw-race/report.bin", share_edit)
    edit = b"ScaiDrive's edit, made during the upload"
    # The edit lands once the transfer checked that the object is still as scanned (its HEAD).
    view = sync_with_edit_during(api, s3, cid, "HEAD", "tw-race", "report.bin", edit)

    assert counts(view) == {"files_conflicted": 1}, api.get(f"/connectors/{cid}/failures").text
    assert object_bytes(s3, "tw-race", "report.bin") == edit
    assert (root / "report.bin").read_bytes() == share_edit
    conflicts = api.get(f"/conflicts?connector={cid}&state=open").json()
    assert [c["path"] for c in conflicts] == ["report.bin"]


def test_a_file_created_in_scaidrive_during_a_large_upload_is_a_conflict_not_overwritten(
        stack, samba, s3):
    """Past the part size the upload is multipart: its completion carries the condition
    (If-None-Match: * for a file new at the file server), checked as the object is made."""
    api, root = stack.api(), samba.path("tw-race-big")
    cid = two_way(api, samba, "tw-race-big", {"readme.txt": b"as synced"},
                  bandwidth_limit="2M")
    share_new = os.urandom(9 * MiB)  # past the stack's 5 MiB part size: ~4.5 s to read
    samba.write_file("tw-race-big/video.bin", share_new)
    made = b"made in ScaiDrive during the upload"
    # The file is made once the multipart upload has begun (its parts then under way).
    view = sync_with_edit_during(api, s3, cid, "POST", "tw-race-big", "video.bin", made,
                                 query="?uploads")

    assert counts(view) == {"files_conflicted": 1}, api.get(f"/connectors/{cid}/failures").text
    assert object_bytes(s3, "tw-race-big", "video.bin") == made
    assert (root / "video.bin").read_bytes() == share_new
    uploads = s3.client()._list_multipart_uploads("tw-race-big").uploads
    assert [u.object_name for u in uploads] == []  # the refused upload's parts are gone
