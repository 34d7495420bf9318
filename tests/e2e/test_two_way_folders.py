"""Two-way folders through the API and every service, against Samba, RabbitMQ, Redis and the S3
server: a folder whose files ScaiDrive deleted is removed at the share with them (and its
parents while empty), never a folder that still holds anything, never the connector's folder;
an empty folder made on one side appears on the other (a folder marker in the bucket: a
zero-byte object whose key ends in "/"), and one removed on one side is removed on the other
if it is empty there, else it stays with what it holds."""
from __future__ import annotations

import os

import pytest

from tests.e2e.helpers import bucket_markers, bucket_tree, disk_tree, empty_dirs
from tests.e2e.test_two_way import counts, put, two_way
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e


def test_folders_emptied_in_scaidrive_are_removed_at_the_share(stack, samba, s3):
    api, root = stack.api(), samba.path("tw-fold-del")
    files = {"gone/deep/a.txt": b"a", "gone/b.txt": b"b", "kept/c.txt": b"c",
             "kept/sibling/k.txt": b"k"} | {f"f{i}.txt": f"filler {i}".encode() for i in range(4)}
    cid = two_way(api, samba, "tw-fold-del", files)

    for path in ("gone/deep/a.txt", "gone/b.txt", "kept/c.txt"):  # 3 of 8: not a mass delete
        s3.client().remove_object("tw-fold-del", path)
    view = sync_and_wait(api, cid)

    assert counts(view) == {"files_deleted": 3}, api.get(f"/connectors/{cid}/failures").text
    assert not (root / "gone").exists()  # emptied: removed, its emptied subfolder first
    assert (root / "kept/sibling/k.txt").read_bytes() == b"k"  # still holds a file: stays
    assert disk_tree(root) == bucket_tree(s3.client(), "tw-fold-del")

    for path in [f"f{i}.txt" for i in range(4)] + ["kept/sibling/k.txt"]:
        s3.client().remove_object("tw-fold-del", path)  # everything: held, then approved
    view = sync_and_wait(api, cid)
    assert view["status"]["run"]["deletes_held"] == 5 and (root / "kept/sibling").exists()
    assert api.post(f"/connectors/{cid}/held-deletes/approve").status_code == 200
    view = wait_run(api, cid, after=view["status"]["run"]["run_id"])
    assert counts(view) == {"files_deleted": 5}
    assert root.is_dir() and not any(root.iterdir())  # all emptied folders went, not the base


def failures(api, cid: str) -> str:
    return api.get(f"/connectors/{cid}/failures").text


def test_empty_folders_made_on_either_side_appear_on_the_other(stack, samba, s3):
    api, root, bucket = stack.api(), samba.path("tw-fold-new"), "tw-fold-new"
    cid = two_way(api, samba, bucket, {"f.txt": b"f"})

    samba.mkdir(f"{bucket}/from the share/inner")  # only "inner" is empty
    put(s3, bucket, "from ScaiDrive/sub/", b"")  # a marker, as the ScaiDrive console makes
    view = sync_and_wait(api, cid)

    assert counts(view) == {}, failures(api, cid)  # folders are no files
    assert bucket_markers(s3.client(), bucket) == {"from the share/inner", "from ScaiDrive/sub"}
    assert empty_dirs(root) == {"from the share/inner", "from ScaiDrive/sub"}
    assert list(disk_tree(root)) == list(bucket_tree(s3.client(), bucket)) == ["f.txt"]

    view = sync_and_wait(api, cid)  # both sides hold them now: nothing to do
    assert view["status"]["run"]["jobs_total"] == 0, view["status"]["run"]
    assert bucket_markers(s3.client(), bucket) == empty_dirs(root)


def test_an_empty_folder_removed_on_one_side_goes_on_the_other_unless_filled(stack, samba, s3):
    api, root, bucket = stack.api(), samba.path("tw-fold-rm"), "tw-fold-rm"
    cid = two_way(api, samba, bucket, {"f.txt": b"f"})
    for name in "abcd":
        samba.mkdir(f"{bucket}/{name}")
    sync_and_wait(api, cid)
    assert bucket_markers(s3.client(), bucket) == {"a", "b", "c", "d"}, failures(api, cid)

    (root / "a").rmdir()  # removed at the share: its marker goes
    s3.client().remove_object(bucket, "b/")  # removed in ScaiDrive: the folder goes
    (root / "c").rmdir()  # removed at the share, but filled in ScaiDrive meanwhile
    put(s3, bucket, "c/new.txt", b"made in ScaiDrive")
    s3.client().remove_object(bucket, "d/")  # removed in ScaiDrive, but filled at the share
    samba.write_file(f"{bucket}/d/new.txt", b"made on the share")
    view = sync_and_wait(api, cid)

    assert counts(view) == {"files_transferred": 2}, failures(api, cid)
    assert not (root / "a").exists() and not (root / "b").exists()
    assert (root / "c/new.txt").read_bytes() == b"made in ScaiDrive"  # stays with its file
    assert (root / "d/new.txt").read_bytes() == b"made on the share"
    assert bucket_markers(s3.client(), bucket) == {"c"}  # nothing deleted implicitly
    assert disk_tree(root) == bucket_tree(s3.client(), bucket)
    assert empty_dirs(root) == set()

    # Settled: nothing comes back. The two files written within a tick of their reads (one by
    # us at the share) are only compared again (racily clean), not sent: skipped.
    view = sync_and_wait(api, cid)
    assert counts(view) == {} and view["status"]["run"]["jobs_total"] == \
        view["status"]["progress"]["files_skipped"] <= 2, view["status"]
    assert not (root / "a").exists() and bucket_markers(s3.client(), bucket) == {"c"}


def test_an_empty_folder_renamed_by_case_in_scaidrive_is_renamed_at_the_share(stack, samba, s3):
    """Its marker `Empty/Inner/` becomes `empty/inner/` in ScaiDrive: the share's folders take
    the new spelling (the same directories: renamed, not removed and made again), no failure
    (before: a case collision recorded, the folder removed, then made again a run later)."""
    api, root, bucket = stack.api(), samba.path("tw-fold-case"), "tw-fold-case"
    cid = two_way(api, samba, bucket, {"f.txt": b"f"})
    samba.mkdir(f"{bucket}/Empty/Inner")
    sync_and_wait(api, cid)
    assert bucket_markers(s3.client(), bucket) == {"Empty/Inner"}, failures(api, cid)
    inode = (root / "Empty/Inner").stat().st_ino

    put(s3, bucket, "empty/inner/", b"")
    s3.client().remove_object(bucket, "Empty/Inner/")
    view = sync_and_wait(api, cid)

    assert counts(view) == {}, failures(api, cid)
    assert api.get(f"/connectors/{cid}/failures").json() == []
    assert "empty" in os.listdir(root) and "Empty" not in os.listdir(root)
    assert os.listdir(root / "empty") == ["inner"]
    assert (root / "empty/inner").stat().st_ino == inode
    assert bucket_markers(s3.client(), bucket) == empty_dirs(root) == {"empty/inner"}

    view = sync_and_wait(api, cid)  # settled: nothing to do either way
    assert view["status"]["run"]["jobs_total"] == 0, view["status"]["run"]
    assert bucket_markers(s3.client(), bucket) == {"empty/inner"}
