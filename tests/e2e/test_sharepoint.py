"""SharePoint library -> bucket through the API and every service, against the Graph emulator
(reached only through msgraph-sdk, azure-identity and httpx, as Microsoft Graph would be)."""
from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from tests.e2e.helpers import bucket_tree, stored_values
from tests.e2e.sharepoint_helpers import EventTap, library_tree, new_site, new_sp_connector, sp_body
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
MB = 1024 * 1024


def _many(graph, drive, n: int = 60) -> None:
    """More items than one delta page (50): a full enumeration would take several requests."""
    for i in range(n):
        graph.put_file(drive, f"Many/f{i:03d}.txt", f"file {i}\n".encode() * (i % 5 + 1))


def test_library_syncs_then_only_the_delta_travels(stack, graph, s3):
    site = new_site(graph)
    drive = graph.add_library(site, "Documents")
    graph.put_file(drive, "Projects/2026/plan.txt", b"plan v1",
                   created_by_email="alice@contoso.com")
    graph.put_file(drive, "Projects/2026/Überblick.txt", "grüße".encode(),
                   created_by_email="bob@contoso.com")
    big = os.urandom(30 * MB)
    graph.put_file(drive, "Media/big.bin", big)
    graph.put_file(drive, "empty.txt", b"")
    _many(graph, drive)
    api = stack.api()
    assert api.put("/users", json=[{"id": "u-alice", "email": "Alice@Contoso.com",
                                    "display_name": "Alice"}]).status_code == 200
    cid = new_sp_connector(api, graph, site, "Documents", "sp-main")["id"]

    view = wait_run(api, cid)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text
    assert progress["files_transferred"] == 64 and progress["files_errored"] == 0
    assert progress["bytes_transferred"] == sum(len(i.data) for i in drive.items.values())
    assert bucket_tree(s3.client(), "sp-main") == library_tree(graph, drive)
    meta = s3.client().stat_object("sp-main", "Projects/2026/Überblick.txt").metadata
    assert urllib.parse.unquote(meta["x-amz-meta-source-name"]) == "Überblick.txt"
    assert urllib.parse.unquote(meta["x-amz-meta-source-owner"]) == "bob@contoso.com"
    assert meta["x-amz-meta-scaidrive-owner"] == "system"  # no ScaiDrive user with that mail
    meta = s3.client().stat_object("sp-main", "Projects/2026/plan.txt").metadata
    assert meta["x-amz-meta-scaidrive-owner"] == "u-alice"
    assert meta["x-amz-meta-scaidrive-owner-mapping"] == "email"

    # Changes in the library: one delta page lists them, and only their bytes travel.
    before = graph.counts()
    graph.put_file(drive, "Projects/new.txt", b"brand new")
    graph.put_file(drive, "Projects/2026/plan.txt", b"plan v2, longer")
    graph.delete(drive, "Many/f001.txt")
    graph.move(drive, "Projects/2026/Überblick.txt", "Projects/2026/Overview.txt")
    graph.move(drive, "Media", "Archive/Media")  # a folder rename: children are not re-sent
    progress = sync_and_wait(api, cid)["status"]["progress"]
    after = graph.counts()
    assert (progress["files_transferred"], progress["files_deleted"], progress["files_moved"],
            progress["files_errored"]) == (2, 1, 2, 0), progress
    assert progress["bytes_transferred"] == len(b"brand new") + len(b"plan v2, longer")
    assert after["delta"] - before["delta"] == 1
    assert after["download"] - before["download"] == 2  # the 30 MB file was copied in the bucket
    assert bucket_tree(s3.client(), "sp-main") == library_tree(graph, drive)

    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert progress["files_transferred"] == 0 and progress["files_scanned"] == 64
    assert api.get("/shares/sp-main").json()["usage_bytes"] == \
        sum(len(i.data) for i in drive.items.values() if not i.deleted)


def test_throttled_run_still_completes(stack, graph, s3):
    site = new_site(graph)
    drive = graph.add_library(site, "Documents")
    for i in range(5):
        graph.put_file(drive, f"t/{i}.txt", b"x" * i)
    api = stack.api()
    throttled = graph.counts().get("throttled", 0)
    graph.throttle(8, retry_after_s=1)  # Graph answers 429 to the next 8 requests
    cid = new_sp_connector(api, graph, site, "Documents", "sp-throttled")["id"]
    view = wait_run(api, cid)
    assert graph.counts()["throttled"] - throttled == 8
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text
    assert bucket_tree(s3.client(), "sp-throttled") == library_tree(graph, drive)


def test_expired_delta_position_resyncs_without_sending_anything_twice(stack, graph, s3):
    site = new_site(graph)
    drive = graph.add_library(site, "Documents")
    _many(graph, drive, 10)
    api = stack.api()
    cid = new_sp_connector(api, graph, site, "Documents", "sp-resync")["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    graph.put_file(drive, "later.txt", b"made before the token expired")
    graph.delete(drive, "Many/f002.txt")
    graph.expire_delta_tokens()  # the saved deltaLink now answers 410 resyncRequired

    view = sync_and_wait(api, cid)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "success"
    assert (progress["files_transferred"], progress["files_deleted"],
            progress["files_errored"]) == (1, 1, 0), progress
    assert bucket_tree(s3.client(), "sp-resync") == library_tree(graph, drive)
    assert "delta position expired" in stack.logs()


async def test_revoked_secret_stops_runs_until_a_patch_resumes_them(stack, graph, s3):
    site = new_site(graph)
    drive = graph.add_library(site, "Documents")
    _many(graph, drive)
    api = stack.api()
    cid = new_sp_connector(api, graph, site, "Documents", "sp-revoked")["id"]
    first = await asyncio.to_thread(wait_run, api, cid)
    assert first["status"]["run"]["outcome"] == "success"
    tap = await EventTap(stack.ns, "connector.auth_failed").open()
    old_secret = graph.client_secret
    graph.revoke_secret()
    graph.revoke_tokens()
    try:
        graph.put_file(drive, "after.txt", b"made while the secret was revoked")
        view = await asyncio.to_thread(sync_and_wait, api, cid)
        status = view["status"]
        assert status["state"] == "auth_failed" and status["run"]["outcome"] == "failed"
        assert "AADSTS7000215" in status["auth_error"]
        event = await tap.get()
        assert (event["event"], event["connector_id"]) == ("connector.auth_failed", cid)
        assert "AADSTS7000215" in event["error"]
        audit = api.get("/audit", params={"connector_id": cid,
                                          "event": "connector.auth_failed"}).json()
        assert len(audit) == 1 and audit[0]["connector_name"] == "sp-revoked"
        assert api.post(f"/connectors/{cid}/sync").status_code == 409  # held until patched
        assert api.patch(f"/connectors/{cid}", json={"client_secret": "still-wrong"}).status_code \
            == 422

        new_secret = "n3w~" + uuid.uuid4().hex
        graph.restore_secret(new_secret)
        delta_calls = graph.counts()["delta"]
        resp = api.patch(f"/connectors/{cid}", json={"client_secret": new_secret})
        assert resp.status_code == 200 and resp.json()["status"]["state"] != "auth_failed"
        view = await asyncio.to_thread(wait_run, api, cid, after=status["run"]["run_id"])
        progress = view["status"]["progress"]
        assert view["status"]["run"]["outcome"] == "success"
        assert progress["files_transferred"] == 1 and progress["files_errored"] == 0
        assert graph.counts()["delta"] - delta_calls == 1  # from the saved position: no resync
        assert bucket_tree(s3.client(), "sp-revoked") == library_tree(graph, drive)
        events = [a["event"] for a in api.get("/audit", params={"connector_id": cid}).json()]
        assert events[:3] == ["connector.auth_restored", "connector.updated",
                              "connector.auth_failed"]
        _assert_nowhere(stack, old_secret, new_secret)
    finally:
        if not graph.tenant.secrets:
            graph.restore_secret(old_secret)
        await tap.close()


def test_secret_revoked_mid_run_holds_its_jobs_until_patched(stack, graph, s3):
    site = new_site(graph)
    drive = graph.add_library(site, "Documents")
    api = stack.api()
    cid = new_sp_connector(api, graph, site, "Documents", "sp-midrun")["id"]
    first = wait_run(api, cid)["status"]["run"]
    assert first["outcome"] == "success"
    for i in range(12):
        graph.put_file(drive, f"batch/{i:02d}.txt", b"queued " * (i + 1))
    old_secret = graph.client_secret
    graph.throttle(3, retry_after_s=2)  # a slow listing: time to pause before transfers begin
    assert api.post(f"/connectors/{cid}/sync").status_code == 202
    # Pause once the run has started (a request still queued when paused is dropped).
    _wait_for(api, cid, lambda st: (st["run"] or {}).get("run_id") != first["run_id"])
    assert api.post(f"/connectors/{cid}/pause").status_code == 200
    # Pause reaches the scan: once the listing is in, it waits; nothing is published.
    status = _wait_for(api, cid, lambda st: st["progress"]["files_listed"] == 12)
    run = status["run"]
    time.sleep(1.5)
    assert _wait_for(api, cid, lambda st: True)["run"]["phase"] == "scanning"
    assert run["jobs_done"] == 0
    graph.revoke_secret()
    graph.revoke_tokens()
    try:
        assert api.post(f"/connectors/{cid}/resume").status_code == 200
        status = _wait_for(api, cid, lambda st: st["state"] == "auth_failed")
        assert status["run"]["phase"] == "transferring"  # held, not failed file by file
        assert not api.get(f"/connectors/{cid}/failures", params={"run_id": run["run_id"]}).json()
        new_secret = "n3w~" + uuid.uuid4().hex
        graph.restore_secret(new_secret)
        assert api.patch(f"/connectors/{cid}",
                         json={"client_secret": new_secret}).status_code == 200
        view = wait_run(api, cid, after=None)
        assert view["status"]["run"]["run_id"] == run["run_id"]
        progress = view["status"]["progress"]
        assert view["status"]["run"]["outcome"] == "success", progress
        assert progress["files_transferred"] == 12 and progress["files_errored"] == 0
        assert bucket_tree(s3.client(), "sp-midrun") == library_tree(graph, drive)
    finally:
        if not graph.tenant.secrets:
            graph.restore_secret(old_secret)


def _wait_for(api, cid: str, ok, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = api.get(f"/connectors/{cid}").json()["status"]
        if ok(status):
            return status
        time.sleep(0.2)
    raise TimeoutError(f"connector {cid} never reached the expected state: {status}")


def test_certificate_credential_syncs(stack, graph, s3, tmp_path):
    site = new_site(graph)
    drive = graph.add_library(site, "Documents")
    graph.put_file(drive, "signed/report.txt", b"by certificate")
    pem = Path(graph.cert_path).read_text()
    api = stack.api()
    body = sp_body(graph, site, "Documents", "sp-cert", certificate=pem)
    del body["client_secret"]
    assert api.post("/shares", json={"name": "sp-cert"}).status_code == 201
    resp = api.post("/connectors", json=body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["credential"] == "certificate" and "PRIVATE KEY" not in resp.text
    view = wait_run(api, resp.json()["id"])
    assert view["status"]["run"]["outcome"] == "success"
    assert bucket_tree(s3.client(), "sp-cert") == library_tree(graph, drive)
    assert "PRIVATE KEY" not in stack.logs()


def test_wrong_site_library_or_secret_is_refused_on_save(stack, graph):
    site = new_site(graph)
    graph.add_library(site, "Documents")
    graph.add_library(site, "Shared Assets")
    api = stack.api()
    assert api.post("/shares", json={"name": "sp-refused"}).status_code == 201
    body = sp_body(graph, site, "Documents", "sp-refused")

    def refused(**changes) -> dict:
        resp = api.post("/connectors", json=body | changes)
        assert resp.status_code == 422, resp.text
        return resp.json()["detail"][0]

    err = refused(library="Nope")
    assert err["loc"] == ["body", "library"] and "Shared Assets" in err["msg"]
    assert refused(site_url=body["site_url"] + "-gone")["loc"] == ["body", "site_url"]
    err = refused(client_secret="not-the-secret")
    assert err["loc"] == ["body", "client_secret"] and "AADSTS7000215" in err["msg"]
    assert "not-the-secret" not in json.dumps(err)
    assert not [c for c in api.get("/connectors").json() if c["name"] == "sp-refused"]

    created = api.post("/connectors", json=body | {"library": "shared assets"})
    assert created.status_code == 201, created.text
    resp = api.patch(f"/connectors/{created.json()['id']}", json={"server": "smb://h/s"})
    assert resp.status_code == 422 and "not a field of a sharepoint" in resp.text


def _assert_nowhere(stack, *secrets: str) -> None:
    """No secret in any service log (DEBUG) or Redis value."""
    logs = stack.logs()
    values = stored_values(stack.ns).values()
    for secret in secrets:
        assert secret not in logs
        assert not [v for v in values if secret in v]


def test_owners_imported_after_the_first_sync_label_its_files(stack, graph, s3):
    """Files synced before their owners were ScaiDrive users went to the system owner; once
    the users are imported, the next run labels them (their objects copied onto themselves, no
    bytes from the library), and the owner still unknown keeps the system owner. An import
    that changes nothing (the same users again) relabels nothing."""
    tag = uuid.uuid4().hex[:8]
    dana, erin = f"dana-{tag}@contoso.com", f"erin-{tag}@contoso.com"
    site = new_site(graph)
    drive = graph.add_library(site, "Documents")
    graph.put_file(drive, "notes/dana.txt", b"by dana", created_by_email=dana)
    graph.put_file(drive, "notes/erin.txt", b"by erin", created_by_email=erin)
    api = stack.api()
    cid = new_sp_connector(api, graph, site, "Documents", f"sp-late-{tag}")["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"

    def owner(name: str) -> tuple[str, str]:
        meta = s3.client().stat_object(f"sp-late-{tag}", f"notes/{name}").metadata
        return meta["x-amz-meta-scaidrive-owner"], meta["x-amz-meta-scaidrive-owner-mapping"]

    assert owner("dana.txt") == owner("erin.txt") == ("system", "system_owner")
    users = [{"id": f"u-dana-{tag}", "email": dana, "display_name": "Dana"}]
    assert api.put("/users", json=users).status_code == 200
    before = graph.counts()
    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert (progress["files_relabeled"], progress["files_transferred"]) == (1, 0), progress
    assert owner("dana.txt") == (f"u-dana-{tag}", "email")
    assert owner("erin.txt") == ("system", "system_owner")
    assert graph.counts()["download"] == before["download"]

    assert api.put("/users", json=users).json() == {"imported": 1, "changed": 0}  # the same
    progress = sync_and_wait(api, cid)["status"]["progress"]
    assert (progress["files_relabeled"], progress["files_skipped"]) == (0, 0), progress
