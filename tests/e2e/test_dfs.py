"""An SMB connector on a DFS namespace, through the API and every service as its own process
(what-users-hit lessons 2 and 9: a DFS path that listed nothing while the job reported success).

The connector's folder is a folder of the DFS root `dfs` holding two links, to folders of the
share `data` (one by the name `localhost`: another connection, as another file server would
be). The scanner follows the links, the transfer workers read behind them (having listed
nothing themselves) and the identity service gets the owners of the files there; a link that
stops leading anywhere is a failure at the link and deletes nothing synced from behind it.
"""
from __future__ import annotations

import os
import shutil

import pytest

from tests.e2e.helpers import bucket_tree, owners_in_bucket
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
MB = 1024 * 1024


def test_a_connector_on_a_dfs_namespace_syncs_what_its_links_lead_to(stack, samba, s3):
    samba.write_file("dfs-sales/q1.txt", b"first quarter", owner="alice")
    samba.write_file("dfs-hr/people/staff.csv", b"id,name\n1,Bob\n", owner="bob")
    scan = os.urandom(3 * MB)  # streamed, several READs in flight
    samba.write_file("dfs-hr/scan.bin", scan, owner="bob")
    samba.dfs_link("ns/sales", "dfs-sales")
    samba.dfs_link("ns/hr", "dfs-hr", host="localhost")
    api = stack.api()
    assert api.post("/shares", json={"name": "dfs"}).status_code == 201
    resp = api.post("/connectors", json={
        "name": "dfs", "kind": "smb", "server": f"smb://127.0.0.1:{samba.port}/dfs/ns",
        "username": samba.username, "password": samba.password, "target_share": "dfs",
        "schedule": "1h"})
    assert resp.status_code == 201, resp.text
    cid = resp.json()["id"]

    view = wait_run(api, cid)
    assert view["status"]["run"]["outcome"] == "success", \
        api.get(f"/connectors/{cid}/failures").text
    objects = bucket_tree(s3.client(), "dfs")
    assert set(objects) == {"sales/q1.txt", "hr/people/staff.csv", "hr/scan.bin"}
    assert s3.client().get_object("dfs", "hr/scan.bin").read() == scan
    owners = {path: source for path, (_, _, source) in owners_in_bucket(s3, "dfs").items()}
    assert owners["sales/q1.txt"].startswith("S-1-22-1-")  # alice's own SID, read behind
    assert owners["hr/scan.bin"].startswith("S-1-22-1-")  # the link, not the default owner
    assert owners["sales/q1.txt"] != owners["hr/scan.bin"]

    # The folder the link to hr leads to is gone, and a new link leads to a share that was
    # retired: a failure at each link, the rest syncs, and nothing synced from behind a link is
    # deleted on the strength of that.
    shutil.rmtree(samba.path("dfs-hr"))
    samba.dfs_link("ns/archive", "", share="retired")
    samba.write_file("dfs-sales/q2.txt", b"second quarter")
    view = sync_and_wait(api, cid)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "partial"
    assert (progress["files_transferred"], progress["files_deleted"]) == (1, 0), progress
    failures = api.get(f"/connectors/{cid}/failures").json()
    assert sorted((f["path"], f["cause"], f["stage"]) for f in failures) == [
        ("archive", "link_unreachable", "list"), ("hr", "link_unreachable", "list")], failures
    messages = {f["path"]: f["message"] for f in failures}
    assert "\\\\127.0.0.1\\retired" in messages["archive"]
    assert "\\\\localhost\\data\\dfs-hr" in messages["hr"]
    assert set(bucket_tree(s3.client(), "dfs")) == {
        "sales/q1.txt", "sales/q2.txt", "hr/people/staff.csv", "hr/scan.bin"}
