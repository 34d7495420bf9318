"""Two-way SharePoint <-> ScaiDrive through the API and every service, against the Graph
emulator (HTTPS, real msgraph-sdk/azure-identity clients), RabbitMQ, Redis, S3 and aiosmtpd."""
from __future__ import annotations

import pytest

from tests.e2e.sharepoint_helpers import new_site, new_sp_connector
from tests.e2e.test_two_way import counts, put
from tests.e2e.test_two_way_conflicts import open_conflicts
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
ADMIN = "sp-admins@example.com"


def content(graph, drive, path: str) -> bytes:
    with graph.tenant.lock:
        return bytes(graph.item(drive, path).data)


def test_edits_propagate_and_a_concurrent_edit_is_caught(stack, graph, s3, smtp):
    api, site = stack.api(), new_site(graph)
    drive = graph.add_library(site, "Documents")
    graph.put_file(drive, "plan.txt", b"plan v1")
    graph.put_file(drive, "report.docx", b"docx v1")
    for i in range(4):
        graph.put_file(drive, f"keep/k{i}.txt", b"kept")
    cid = new_sp_connector(api, graph, site, "Documents", "sp-two-way", sync_mode="two_way",
                           admin_emails=[ADMIN])["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    graph.rewrite_office = True
    try:
        put(s3, "sp-two-way", "report.docx", b"docx v2 from ScaiDrive")  # pushed back
        graph.put_file(drive, "plan.txt", b"plan v2 from SharePoint")  # pulled
        put(s3, "sp-two-way", "bad|name.txt", b"SharePoint cannot hold this name")
        view = sync_and_wait(api, cid)
        assert counts(view) == {"files_transferred": 2, "files_errored": 1}
        failures = api.get(f"/connectors/{cid}/failures").json()
        assert [(f["path"], f["cause"]) for f in failures] == [("bad|name.txt", "invalid_name")]
        # SharePoint rewrote the Office file on upload: ScaiDrive keeps what its user saved and
        # the rewrite is not taken for a new change (no ping-pong).
        assert content(graph, drive, "report.docx").startswith(b"docx v2 from ScaiDrive")
        assert content(graph, drive, "report.docx") != b"docx v2 from ScaiDrive"
        obj = s3.client().get_object("sp-two-way", "plan.txt")
        assert obj.read() == b"plan v2 from SharePoint"
        assert counts(sync_and_wait(api, cid)) == {"files_errored": 1}  # only the bad name

        # Someone saves plan.txt in SharePoint while ScaiDrive's edit is being uploaded:
        # If-Match refuses our commit, and the two edits become a conflict.
        put(s3, "sp-two-way", "plan.txt", b"plan v3 from ScaiDrive")
        graph.edit_during_next_upload(drive, "plan.txt", b"plan v3 saved in SharePoint")
        view = sync_and_wait(api, cid)
        assert counts(view) == {"files_conflicted": 1, "files_errored": 1}
        assert content(graph, drive, "plan.txt") == b"plan v3 saved in SharePoint"
        assert s3.client().get_object("sp-two-way", "plan.txt").read() == b"plan v3 from ScaiDrive"
        (rec,) = open_conflicts(api, cid, 1).values()
        assert rec["path"] == "plan.txt"
        assert rec["source"]["size"] == len(b"plan v3 saved in SharePoint")
        assert len(smtp.wait_for(ADMIN, 1)) == 1
    finally:
        graph.rewrite_office = False
