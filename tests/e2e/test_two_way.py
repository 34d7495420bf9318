"""Two-way SMB <-> ScaiDrive through the API and every service, against Samba, RabbitMQ, Redis
and the S3 server: edits on each side propagate, names the share cannot hold are failures, and
a run that would delete most files holds the deletions for an admin."""
from __future__ import annotations

import io
import os
import time

import pytest

from tests.e2e.helpers import bucket_tree, disk_tree, new_connector
from tests.e2e.sharepoint_helpers import EventTap
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e


def put(s3, bucket: str, key: str, data: bytes) -> None:
    """A ScaiDrive user's edit: an object written straight into the share's bucket."""
    s3.client().put_object(bucket, key, io.BytesIO(data), len(data))


def two_way(api, samba, name: str, files: dict[str, bytes], **extra) -> str:
    """A two-way connector over the share's existing `files` (last written an hour before its
    first run reads them: not racily clean), after its first run."""
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for rel, data in files.items():
        path = samba.write_file(f"{name}/{rel}", data)
        os.utime(path, ns=(an_hour_ago, an_hour_ago))
    cid = new_connector(api, samba, name, name, sync_mode="two_way", **extra)["id"]
    view = wait_run(api, cid)
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text
    return cid


def counts(view: dict) -> dict:
    p = view["status"]["progress"]
    return {k: p[k] for k in ("files_transferred", "files_deleted", "files_errored",
                              "files_conflicted") if p[k]}


def test_edits_on_each_side_propagate(stack, samba, s3):
    api, root = stack.api(), samba.path("tw-edit")
    files = {f"f{i}.txt": f"file {i}".encode() for i in range(6)} | {"docs/b.txt": b"old b"}
    cid = two_way(api, samba, "tw-edit", files)
    assert bucket_tree(s3.client(), "tw-edit") == disk_tree(root)

    put(s3, "tw-edit", "docs/b.txt", b"b edited in ScaiDrive")  # pushed back
    put(s3, "tw-edit", "new/from-scaidrive.txt", b"made in ScaiDrive")  # pushed, folder made
    samba.write_file("tw-edit/f0.txt", b"f0 edited on the share")  # pulled
    s3.client().remove_object("tw-edit", "f1.txt")  # deleted at the source
    (root / "f2.txt").unlink()  # deleted in ScaiDrive
    view = sync_and_wait(api, cid)
    assert counts(view) == {"files_transferred": 3, "files_deleted": 2}, \
        api.get(f"/connectors/{cid}/failures").text
    assert (root / "docs/b.txt").read_bytes() == b"b edited in ScaiDrive"
    assert (root / "new/from-scaidrive.txt").read_bytes() == b"made in ScaiDrive"
    assert not (root / "f1.txt").exists()
    assert bucket_tree(s3.client(), "tw-edit") == disk_tree(root)

    # Nothing changed since: nothing moves either way (no echo of our own writes).
    assert counts(sync_and_wait(api, cid)) == {}


def test_names_the_share_cannot_hold_are_failures(stack, samba, s3):
    api = stack.api()
    cid = two_way(api, samba, "tw-names", {"a.txt": b"a", "Docs/x.txt": b"x"})
    put(s3, "tw-names", "bad:name.txt", b"colon")
    put(s3, "tw-names", "A.txt", b"case twin of a.txt")
    put(s3, "tw-names", "docs/y.txt", b"would land in Docs/")
    put(s3, "tw-names", "fine.txt", b"fine")
    view = sync_and_wait(api, cid)
    assert counts(view) == {"files_transferred": 1, "files_errored": 3}
    failures = {f["path"]: f["cause"] for f in api.get(f"/connectors/{cid}/failures").json()}
    assert failures == {"bad:name.txt": "invalid_name", "A.txt": "name_collision",
                        "docs/y.txt": "name_collision"}
    assert samba.path("tw-names/a.txt").read_bytes() == b"a"  # never overwritten
    assert samba.path("tw-names/fine.txt").read_bytes() == b"fine"
    # The refused objects stay in ScaiDrive, untouched.
    assert bucket_tree(s3.client(), "tw-names").keys() >= {"bad:name.txt", "A.txt", "docs/y.txt"}


async def test_mass_deletes_are_held_until_an_admin_decides(stack, samba, s3):
    api, root = stack.api(), samba.path("tw-mass")
    files = {f"f{i}.txt": f"file {i}".encode() for i in range(10)}
    cid = two_way(api, samba, "tw-mass", files)
    tap = await EventTap(stack.ns, "connector.deletes_held").open()
    try:
        for i in range(8):  # 80% of the share's files deleted at the source
            (root / f"f{i}.txt").unlink()
        view = sync_and_wait(api, cid)
        assert counts(view) == {} and view["status"]["run"]["deletes_held"] == 8
        assert len(bucket_tree(s3.client(), "tw-mass")) == 10  # nothing deleted in ScaiDrive
        event = await tap.get()
        assert (event["connector_id"], event["side"], event["count"], event["total"]) == \
            (cid, "scaidrive", 8, 10)
        assert view["status"]["awaiting_admin"] == {"conflicts": 0, "deletes_held": 8}
        held = api.get(f"/connectors/{cid}/held-deletes").json()
        assert held["count"] == 8 and held["files"][0] == {"path": "f0.txt", "side": "scaidrive"}

        # Rejected: the files come back to the share from ScaiDrive.
        assert api.post(f"/connectors/{cid}/held-deletes/reject").json()["count"] == 8
        assert api.post(f"/connectors/{cid}/held-deletes/reject").status_code == 409
        view = wait_run(api, cid, after=view["status"]["run"]["run_id"])
        assert counts(view) == {"files_transferred": 8}
        assert disk_tree(root) == bucket_tree(s3.client(), "tw-mass")

        # Deleted again and approved: the next run deletes them in ScaiDrive.
        for i in range(8):
            (root / f"f{i}.txt").unlink()
        view = sync_and_wait(api, cid)
        assert view["status"]["run"]["deletes_held"] == 8
        assert api.post(f"/connectors/{cid}/held-deletes/approve").status_code == 200
        view = wait_run(api, cid, after=view["status"]["run"]["run_id"])
        assert counts(view) == {"files_deleted": 8}
        assert sorted(bucket_tree(s3.client(), "tw-mass")) == ["f8.txt", "f9.txt"]
        audit = [e["event"] for e in api.get(f"/audit?connector_id={cid}").json()]
        assert audit.count("connector.deletes_held") == 2
        assert {"connector.deletes_rejected", "connector.deletes_approved"} <= set(audit)
    finally:
        await tap.close()
