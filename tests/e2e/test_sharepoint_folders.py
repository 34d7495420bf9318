"""Two-way folders in a SharePoint library through the API and every service, against the Graph
emulator, RabbitMQ, Redis and the S3 server: an empty folder made in SharePoint appears as a
folder marker in the bucket (a zero-byte object whose key ends in "/"), a marker made in
ScaiDrive appears as a folder in SharePoint, and a folder whose files ScaiDrive deleted is
removed in SharePoint with them (its parents while empty), never one that still holds anything."""
from __future__ import annotations

import pytest

from tests.e2e.helpers import bucket_markers, bucket_tree
from tests.e2e.sharepoint_helpers import library_tree, new_site, new_sp_connector
from tests.e2e.test_two_way import put
from tests.e2e.test_two_way_renames import progress
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e


def library_empty_folders(graph, drive) -> set[str]:
    """The library's folders that hold nothing, as the emulator holds them (not the root)."""
    t = graph.tenant
    with t.lock:
        return {t.path_of(drive, i).lstrip("/") for i in drive.items.values()
                if i.is_folder and not i.deleted and i.id != drive.root_id
                and not drive.children(i.id)}


def test_folders_travel_both_ways_in_sharepoint(stack, graph, s3):
    api, site, bucket = stack.api(), new_site(graph), "sp-fold"
    drive = graph.add_library(site, "Documents")
    files = {"gone/deep/a.txt": b"a", "gone/b.txt": b"b", "kept/c.txt": b"c"} | \
        {f"f{i}.txt": f"filler {i}".encode() for i in range(4)}
    for path, data in files.items():
        graph.put_file(drive, path, data)
    cid = new_sp_connector(api, graph, site, "Documents", bucket, sync_mode="two_way",
                           admin_emails=["sp-admins@example.com"])["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"

    graph.mkdir(drive, "from SharePoint/inner")  # only "inner" is empty
    put(s3, bucket, "from ScaiDrive/sub/", b"")  # a marker, as the ScaiDrive console makes
    for path in ("gone/deep/a.txt", "gone/b.txt"):  # 2 of 7: not a mass delete
        s3.client().remove_object(bucket, path)
    view = sync_and_wait(api, cid)

    failures = api.get(f"/connectors/{cid}/failures").text
    assert progress(view) == {"files_deleted": 2}, failures  # folders are no files
    assert bucket_markers(s3.client(), bucket) == {"from SharePoint/inner", "from ScaiDrive/sub"}
    assert library_empty_folders(graph, drive) == {"from SharePoint/inner", "from ScaiDrive/sub"}
    assert graph.item(drive, "gone") is None  # emptied by ScaiDrive's deletions: removed
    assert graph.item(drive, "kept/c.txt").data == b"c"
    assert library_tree(graph, drive) == bucket_tree(s3.client(), bucket)

    view = sync_and_wait(api, cid)  # both sides hold them now: nothing to do
    assert view["status"]["run"]["jobs_total"] == 0, view["status"]["run"]
    assert bucket_markers(s3.client(), bucket) == library_empty_folders(graph, drive)
