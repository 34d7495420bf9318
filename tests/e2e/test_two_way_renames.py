"""Two-way renames through the API and every service, against Samba (and the Graph emulator),
RabbitMQ, Redis and the S3 server: a file renamed on one side is renamed on the other (no bytes
sent again, counted as moved), and a folder renamed there is many moves, never held as a mass
deletion."""
from __future__ import annotations

import hashlib
import os

import pytest
from minio.commonconfig import CopySource

from tests.e2e.helpers import bucket_tree, disk_tree
from tests.e2e.sharepoint_helpers import new_site, new_sp_connector
from tests.e2e.test_two_way import two_way
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024


def progress(view: dict) -> dict:
    p = view["status"]["progress"]
    return {k: p[k] for k in ("files_transferred", "files_moved", "files_deleted",
                              "files_errored", "files_conflicted", "bytes_transferred") if p[k]}


def rename_in_scaidrive(s3, bucket: str, old: str, new: str) -> None:
    """What a ScaiDrive client's rename is in the bucket: a copy, then a delete."""
    client = s3.client()
    client.copy_object(bucket, new, CopySource(bucket, old))
    client.remove_object(bucket, old)


def test_a_file_renamed_at_the_share_moves_in_the_bucket_without_its_bytes(stack, samba, s3):
    api, root = stack.api(), samba.path("tw-ren-src")
    big = os.urandom(4 * MiB)
    cid = two_way(api, samba, "tw-ren-src", {"reports/q1.bin": big, "other.txt": b"o"})

    samba.mkdir("tw-ren-src/archive/2024")
    os.rename(root / "reports/q1.bin", root / "archive/2024/q1 final.bin")
    view = sync_and_wait(api, cid)

    assert progress(view) == {"files_moved": 1}, api.get(f"/connectors/{cid}/failures").text
    tree = bucket_tree(s3.client(), "tw-ren-src")
    assert "reports/q1.bin" not in tree
    assert tree["archive/2024/q1 final.bin"] == hashlib.sha256(big).hexdigest()
    assert tree == disk_tree(root)
    assert progress(sync_and_wait(api, cid)) == {}  # nothing left to do either way


def test_an_object_renamed_in_scaidrive_is_renamed_at_the_share(stack, samba, s3):
    api, root = stack.api(), samba.path("tw-ren-sd")
    data = os.urandom(300_000)
    cid = two_way(api, samba, "tw-ren-sd", {"a/draft.docx": data, "b.txt": b"b"})
    inode = (root / "a/draft.docx").stat().st_ino

    rename_in_scaidrive(s3, "tw-ren-sd", "a/draft.docx", "final/report.docx")
    rename_in_scaidrive(s3, "tw-ren-sd", "b.txt", "B.txt")  # by case only: Samba ignores case
    view = sync_and_wait(api, cid)

    assert progress(view) == {"files_moved": 2}, api.get(f"/connectors/{cid}/failures").text
    moved = root / "final/report.docx"
    assert moved.stat().st_ino == inode and moved.read_bytes() == data  # the same file
    assert "B.txt" in os.listdir(root) and "b.txt" not in os.listdir(root)
    assert not (root / "a").exists()  # its folder, emptied by the move, went with it
    assert disk_tree(root) == bucket_tree(s3.client(), "tw-ren-sd")
    assert progress(sync_and_wait(api, cid)) == {}


def test_a_folder_renamed_in_scaidrive_is_moved_not_held(stack, samba, s3):
    api, root = stack.api(), samba.path("tw-ren-mass")
    files = {f"team/f{i}.txt": f"file {i}".encode() for i in range(6)} | \
        {f"keep/k{i}.txt": f"kept {i}".encode() for i in range(4)}
    cid = two_way(api, samba, "tw-ren-mass", files)
    inodes = {p: (root / p).stat().st_ino for p in files}

    for i in range(6):  # 60% of the tree: the folder "team" renamed "Team 2024"
        rename_in_scaidrive(s3, "tw-ren-mass", f"team/f{i}.txt", f"Team 2024/f{i}.txt")
    view = sync_and_wait(api, cid)

    assert view["status"]["run"].get("deletes_held", 0) == 0
    assert progress(view) == {"files_moved": 6}, api.get(f"/connectors/{cid}/failures").text
    assert api.get(f"/connectors/{cid}/held-deletes").json()["count"] == 0
    assert not (root / "team").exists()
    assert all((root / f"Team 2024/f{i}.txt").stat().st_ino == inodes[f"team/f{i}.txt"]
               for i in range(6))
    assert disk_tree(root) == bucket_tree(s3.client(), "tw-ren-mass")


def test_a_folder_renamed_by_case_in_scaidrive_is_renamed_at_the_share(stack, samba, s3):
    """`Docs/` -> `docs/` and `Docs/Sub/` -> `docs/sub/` in ScaiDrive. On a share that ignores
    case the files' own renames would leave them in `Docs` (and the next run would take the
    rename back): the folders themselves are renamed. Nothing collides, no byte is sent, and
    the next run finds both sides alike."""
    api, root = stack.api(), samba.path("tw-ren-case")
    files = {"Docs/a.txt": b"a" * 100, "Docs/Sub/b.txt": b"b" * 100, "Other/c.txt": b"c"}
    cid = two_way(api, samba, "tw-ren-case", files)
    inodes = {p: (root / p).stat().st_ino for p in files}

    rename_in_scaidrive(s3, "tw-ren-case", "Docs/a.txt", "docs/a.txt")
    rename_in_scaidrive(s3, "tw-ren-case", "Docs/Sub/b.txt", "docs/sub/b.txt")
    view = sync_and_wait(api, cid)

    assert progress(view) == {"files_moved": 2}, api.get(f"/connectors/{cid}/failures").text
    assert sorted(os.listdir(root)) == ["Other", "docs"]
    assert sorted(os.listdir(root / "docs")) == ["a.txt", "sub"]
    assert (root / "docs/a.txt").stat().st_ino == inodes["Docs/a.txt"]
    assert (root / "docs/sub/b.txt").stat().st_ino == inodes["Docs/Sub/b.txt"]
    tree = bucket_tree(s3.client(), "tw-ren-case")
    assert sorted(tree) == ["Other/c.txt", "docs/a.txt", "docs/sub/b.txt"]
    assert disk_tree(root) == tree
    assert progress(sync_and_wait(api, cid)) == {}
    assert bucket_tree(s3.client(), "tw-ren-case") == tree  # ScaiDrive's spelling stays


def test_a_folder_renamed_at_the_share_is_moved_not_held(stack, samba, s3):
    api, root = stack.api(), samba.path("tw-ren-mass-src")
    files = {f"team/f{i}.txt": f"file {i}".encode() for i in range(6)} | \
        {f"keep/k{i}.txt": f"kept {i}".encode() for i in range(4)}
    cid = two_way(api, samba, "tw-ren-mass-src", files)

    os.rename(root / "team", root / "Team 2024")
    view = sync_and_wait(api, cid)

    assert view["status"]["run"].get("deletes_held", 0) == 0
    assert progress(view) == {"files_moved": 6}, api.get(f"/connectors/{cid}/failures").text
    assert disk_tree(root) == bucket_tree(s3.client(), "tw-ren-mass-src")


def test_renames_both_ways_in_sharepoint_keep_the_item(stack, graph, s3):
    api, site = stack.api(), new_site(graph)
    drive = graph.add_library(site, "Documents")
    for name in ("plan.txt", "notes.txt", "keep.txt"):
        graph.put_file(drive, name, f"{name} content".encode())
    cid = new_sp_connector(api, graph, site, "Documents", "sp-ren", sync_mode="two_way",
                           admin_emails=["sp-admins@example.com"])["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    item_id = graph.item(drive, "notes.txt").id

    graph.move(drive, "plan.txt", "2024/plan v2.txt")  # renamed in SharePoint
    rename_in_scaidrive(s3, "sp-ren", "notes.txt", "meetings/notes.txt")
    view = sync_and_wait(api, cid)

    assert progress(view) == {"files_moved": 2}, api.get(f"/connectors/{cid}/failures").text
    assert sorted(bucket_tree(s3.client(), "sp-ren")) == \
        ["2024/plan v2.txt", "keep.txt", "meetings/notes.txt"]
    moved = graph.item(drive, "meetings/notes.txt")
    assert moved.id == item_id and moved.data == b"notes.txt content"
    assert graph.item(drive, "notes.txt") is None
    assert progress(sync_and_wait(api, cid)) == {}


def test_a_folder_renamed_by_case_in_scaidrive_is_renamed_in_sharepoint(stack, graph, s3):
    """The same in a SharePoint library (which ignores case too): the folder item takes the
    new name, it and its files keep their item ids, and the next run finds nothing to do."""
    api, site = stack.api(), new_site(graph)
    drive = graph.add_library(site, "Documents")
    graph.put_file(drive, "Docs/a.txt", b"a" * 50)
    graph.put_file(drive, "Docs/Sub/b.txt", b"b" * 50)
    cid = new_sp_connector(api, graph, site, "Documents", "sp-ren-case", sync_mode="two_way",
                           admin_emails=["sp-admins@example.com"])["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    ids = {p: graph.item(drive, p).id for p in ("Docs", "Docs/Sub", "Docs/a.txt")}

    rename_in_scaidrive(s3, "sp-ren-case", "Docs/a.txt", "docs/a.txt")
    rename_in_scaidrive(s3, "sp-ren-case", "Docs/Sub/b.txt", "docs/sub/b.txt")
    view = sync_and_wait(api, cid)

    assert progress(view) == {"files_moved": 2}, api.get(f"/connectors/{cid}/failures").text
    folder, sub = graph.item(drive, "docs"), graph.item(drive, "docs/sub")
    assert (folder.name, sub.name) == ("docs", "sub")
    assert (folder.id, sub.id) == (ids["Docs"], ids["Docs/Sub"])
    assert graph.item(drive, "docs/a.txt").id == ids["Docs/a.txt"]
    assert progress(sync_and_wait(api, cid)) == {}
    assert sorted(bucket_tree(s3.client(), "sp-ren-case")) == ["docs/a.txt", "docs/sub/b.txt"]
