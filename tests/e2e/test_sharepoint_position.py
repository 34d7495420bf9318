"""A SharePoint connector's saved delta position keeps the library's folders and only the files
its index does not vouch for; the files synced and unchanged are rebuilt from the index at the
next run. Through the API and every service against the Graph emulator: the runs after that
still see every change, a deletion held for an admin stays held, and a rejected deletion of
files the position left to the index still brings them back (from the change feed alone)."""
from __future__ import annotations

import pytest
import redis

from tests.e2e.helpers import bucket_tree
from tests.e2e.sharepoint_helpers import library_tree, new_site, new_sp_connector
from tests.e2e.test_two_way import counts, put
from tests.fixtures.stack import REDIS_URL, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e


def position_files(ns: str, cid: str) -> int:
    """How many items of the saved position are files (a file's packed item holds "|" five
    times; a folder's once)."""
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    return sum(v.count("|") >= 5 for v in r.hvals(f"{ns}:items:{cid}"))


def progress(view: dict) -> tuple[int, int, int, int]:
    p = view["status"]["progress"]
    return p["files_transferred"], p["files_deleted"], p["files_moved"], p["files_errored"]


def test_unchanged_files_are_left_to_the_index_and_every_later_change_still_syncs(
        stack, graph, s3):
    api, site = stack.api(), new_site(graph)
    drive = graph.add_library(site, "Documents")
    for i in range(12):
        graph.put_file(drive, f"Team/Reports/r{i:02d}.txt", f"report {i}".encode(),
                       created_by_email="alice@contoso.com")
    graph.put_file(drive, "readme.txt", b"top level")
    cid = new_sp_connector(api, graph, site, "Documents", "sp-position")["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    assert position_files(stack.ns, cid) == 13  # saved before any was synced

    view = sync_and_wait(api, cid)  # nothing changed: the index now vouches for every file
    assert progress(view) == (0, 0, 0, 0) and view["status"]["progress"]["files_scanned"] == 13
    assert position_files(stack.ns, cid) == 0

    graph.put_file(drive, "readme.txt", b"top level, edited")
    graph.delete(drive, "Team/Reports/r05.txt")
    graph.put_file(drive, "Team/new.txt", b"new")
    graph.move(drive, "Team/Reports", "Archive/Reports 2026")  # children are not re-sent
    view = sync_and_wait(api, cid)
    assert progress(view) == (2, 1, 11, 0), view["status"]["progress"]
    assert bucket_tree(s3.client(), "sp-position") == library_tree(graph, drive)

    view = sync_and_wait(api, cid)  # the moved files found under their new folder
    assert progress(view) == (0, 0, 0, 0) and view["status"]["progress"]["files_scanned"] == 13
    assert position_files(stack.ns, cid) == 0
    graph.put_file(drive, "Archive/Reports 2026/r07.txt", b"report 7, edited after the move")
    assert progress(sync_and_wait(api, cid)) == (1, 0, 0, 0)
    assert bucket_tree(s3.client(), "sp-position") == library_tree(graph, drive)


def test_deletions_held_for_an_admin_stay_held_until_approved(stack, graph, s3):
    api, site = stack.api(), new_site(graph)
    drive = graph.add_library(site, "Documents")
    for i in range(4):
        graph.put_file(drive, f"Held/h{i}.txt", f"held {i}".encode())
    cid = new_sp_connector(api, graph, site, "Documents", "sp-held")["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    sync_and_wait(api, cid)  # the position now leaves the files to the index
    for i in range(3):  # 75% deleted: more than max_delete_percent (50)
        graph.delete(drive, f"Held/h{i}.txt")
    assert sync_and_wait(api, cid)["status"]["run"]["deletes_held"] == 3

    # A run after it (no change since): the files are still gone, not rebuilt from their
    # records, so the deletions stay held and nothing reappears.
    view = sync_and_wait(api, cid)
    assert view["status"]["run"]["deletes_held"] == 3 and progress(view) == (0, 0, 0, 0)
    assert len(bucket_tree(s3.client(), "sp-held")) == 4

    assert api.post(f"/connectors/{cid}/held-deletes/approve").status_code == 200
    view = wait_run(api, cid, after=view["status"]["run"]["run_id"])
    assert progress(view) == (0, 3, 0, 0)
    assert bucket_tree(s3.client(), "sp-held") == library_tree(graph, drive)
    assert position_files(stack.ns, cid) == 0  # the tombstones went with the records


def test_rejected_deletions_in_scaidrive_come_back_from_the_library(stack, graph, s3,
                                                                   monkeypatch):
    """The files rejected deletions keep are put back in the position as their records are
    dropped: the next run brings them back from the change feed alone, not a full listing."""
    monkeypatch.setattr(graph, "page_size", 2)  # a full listing: 3 delta pages or more
    api, site = stack.api(), new_site(graph)
    drive = graph.add_library(site, "Documents")
    for i in range(4):
        graph.put_file(drive, f"Kept/k{i}.txt", f"kept {i}".encode())
    cid = new_sp_connector(api, graph, site, "Documents", "sp-reject",
                           sync_mode="two_way")["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    sync_and_wait(api, cid)
    assert position_files(stack.ns, cid) == 0
    for i in range(3):  # deleted by a ScaiDrive user: held, then rejected
        s3.client().remove_object("sp-reject", f"Kept/k{i}.txt")
    view = sync_and_wait(api, cid)
    assert view["status"]["run"]["deletes_held"] == 3
    assert len(library_tree(graph, drive)) == 4  # nothing deleted in SharePoint

    before = graph.counts()["delta"]
    assert api.post(f"/connectors/{cid}/held-deletes/reject").json()["count"] == 3
    view = wait_run(api, cid, after=view["status"]["run"]["run_id"])
    assert counts(view) == {"files_transferred": 3}
    assert bucket_tree(s3.client(), "sp-reject") == library_tree(graph, drive)
    assert graph.counts()["delta"] - before == 1  # the changes since: none
    assert progress(sync_and_wait(api, cid)) == (0, 0, 0, 0)
    assert position_files(stack.ns, cid) == 0  # vouched for by their new records


def test_files_scaidrive_wrote_to_the_library_are_left_to_the_index_too(stack, graph, s3):
    """SharePoint names the application as the creator of what ScaiDrive pushed; its record
    has no owner of the source's: it still vouches for the file, whose later edit arrives."""
    api, site = stack.api(), new_site(graph)
    drive = graph.add_library(site, "Documents")
    graph.put_file(drive, "Kept/k.txt", b"kept", created_by_email="alice@contoso.com")
    cid = new_sp_connector(api, graph, site, "Documents", "sp-pushed",
                           sync_mode="two_way")["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    put(s3, "sp-pushed", "Kept/pushed.txt", b"from ScaiDrive")
    put(s3, "sp-pushed", "New/pushed too.txt", b"from ScaiDrive, in a new folder")
    assert counts(sync_and_wait(api, cid)) == {"files_transferred": 2}
    assert counts(sync_and_wait(api, cid)) == {}
    assert position_files(stack.ns, cid) == 0

    graph.put_file(drive, "New/pushed too.txt", b"edited in SharePoint")
    assert counts(sync_and_wait(api, cid)) == {"files_transferred": 1}
    assert bucket_tree(s3.client(), "sp-pushed") == library_tree(graph, drive)
