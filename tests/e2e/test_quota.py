"""A share's quota, as the spec's failure list has it ("file too large for the target share's
quota"): a file that does not fit is a per-file failure naming the file and the sizes, the rest
syncs, nothing stored is touched; raising the quota (PATCH) lets the next run bring it in."""
from __future__ import annotations

import os

import pytest

from tests.e2e.helpers import bucket_tree
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
KB = 1000


def test_a_file_over_the_quota_fails_alone_and_fits_once_the_quota_is_raised(stack, samba, s3):
    api = stack.api()
    for name in ("a.bin", "b.bin", "c.bin"):
        samba.write_file(f"quota/{name}", os.urandom(20 * KB))
    assert api.post("/shares", json={"name": "quota", "quota_bytes": 50 * KB}).status_code == 201
    cid = _connector(api, samba)  # into the share made above, with its quota
    view = wait_run(api, cid)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "partial"
    assert (progress["files_transferred"], progress["files_errored"]) == (2, 1)
    [failure] = api.get(f"/connectors/{cid}/failures").json()
    assert failure["cause"] == "quota_exceeded" and failure["path"] in ("a.bin", "b.bin", "c.bin")
    assert "20000 bytes" in failure["message"] and "50000" in failure["message"]
    assert len(bucket_tree(s3.client(), "quota")) == 2
    assert api.get("/shares/quota").json()["usage_bytes"] == 40 * KB

    raised = api.patch("/shares/quota", json={"quota_bytes": 100 * KB})
    assert raised.status_code == 200 and raised.json()["quota_bytes"] == 100 * KB
    assert api.patch("/shares/no-such-share", json={"quota_bytes": 1}).status_code == 404
    assert api.patch("/shares/quota", json={"quota_bytes": -1}).status_code == 422
    view = sync_and_wait(api, cid)
    assert view["status"]["run"]["outcome"] == "success"
    assert view["status"]["progress"]["files_transferred"] == 1
    assert len(bucket_tree(s3.client(), "quota")) == 3
    assert api.get("/shares/quota").json()["usage_bytes"] == 60 * KB


def _connector(api, samba) -> str:
    body = {"name": "quota-conn", "kind": "smb", "target_share": "quota", "schedule": "1h",
            "server": f"smb://127.0.0.1:{samba.port}/{samba.share}/quota",
            "username": samba.username, "password": samba.password}
    resp = api.post("/connectors", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]
