"""The admin API: auth, validation, shares, credentials, and secrets kept out of everything."""
from __future__ import annotations

import asyncio
import json
import os

import aio_pika
import httpx
import pytest

from shared.errors import PLAIN
from tests.e2e.helpers import bucket_tree, new_connector, stored_values, write
from tests.fixtures.stack import AMQP_URL, Stack, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e


def test_no_or_wrong_token_is_401(stack):
    base = f"http://127.0.0.1:{stack.port}/api/v1"
    assert httpx.get(f"{base}/connectors").status_code == 401
    wrong = httpx.get(f"{base}/connectors", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert stack.api().get("/openapi.json").json()["info"]["title"] == "ScaiDrive Connectors"


@pytest.mark.parametrize("field,value", [
    ("server", "fileserver/share"), ("schedule", "whenever"), ("sync_mode", "sideways"),
    ("target_share", "No_Such"), ("name", ""), ("password", None),
])
def test_bad_input_is_422_naming_the_field(stack, samba, field, value):
    body = {"name": "x", "server": f"smb://127.0.0.1:{samba.port}/data", "username": "u",
            "password": "pw-never-echoed", "target_share": "main", "schedule": "5m"}
    body[field] = value
    if value is None:
        del body[field]
    resp = stack.api().post("/connectors", json=body)
    assert resp.status_code == 422
    assert field in [e["loc"][-1] for e in resp.json()["detail"]], resp.text
    assert "pw-never-echoed" not in resp.text


def test_unknown_target_share_is_422(stack, samba):
    body = {"name": "x", "server": f"smb://127.0.0.1:{samba.port}/data", "username": "u",
            "password": "p", "target_share": "nowhere"}
    resp = stack.api().post("/connectors", json=body)
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "target_share"]


def test_shares_lifecycle(stack, samba, s3):
    api = stack.api()
    write(samba.share_dir / "keep", "doc.txt", b"stays after the connector goes")
    c = new_connector(api, samba, "keep", "keep")
    assert api.post("/shares", json={"name": "keep"}).status_code == 409
    wait_run(api, c["id"])
    assert api.get("/shares/keep").json()["usage_bytes"] == len(b"stays after the connector goes")
    assert api.delete("/shares/keep").status_code == 409  # a connector targets it

    assert api.delete(f"/connectors/{c['id']}").status_code == 204
    assert api.get(f"/connectors/{c['id']}").status_code == 404
    assert "doc.txt" in bucket_tree(s3.client(), "keep")  # config gone, files stay
    assert api.delete("/shares/keep").status_code == 204
    assert not s3.client().bucket_exists("keep")
    assert api.get("/shares/keep").status_code == 404


def test_a_wrong_smb_password_is_refused_at_its_field_on_save(stack, samba):
    api = stack.api()
    assert api.post("/shares", json={"name": "refused"}).status_code == 201
    body = {"name": "refused", "kind": "smb", "target_share": "refused", "schedule": "1h",
            "server": f"smb://127.0.0.1:{samba.port}/{samba.share}",
            "username": samba.username, "password": "wrong-password-1"}
    resp = api.post("/connectors", json=body)
    assert resp.status_code == 422, resp.text
    [error] = resp.json()["detail"]
    assert error["loc"] == ["body", "password"]
    assert error["msg"] == "the file server refused this user name and password"
    unknown = api.post("/connectors", json=body | {
        "password": samba.password, "server": f"smb://127.0.0.1:{samba.port}/nosuchshare"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "server"]
    assert "no share named 'nosuchshare'" in unknown.json()["detail"][0]["msg"]
    assert not [c for c in api.get("/connectors").json() if c["name"] == "refused"]

    tested = api.post("/connectors/test", json=body | {"sync_mode": "two_way",
                                                       "password": samba.password})
    assert tested.status_code == 200
    assert [(c["check"], c["ok"]) for c in tested.json()["checks"]] == [
        ("logon", True), ("folder", True), ("write access", True)]
    wrong = api.post("/connectors/test", json=body).json()
    assert not wrong["ok"] and wrong["checks"][0]["field"] == "password"

    readonly = samba.share_dir / "read-only"  # root's, 0755: the account may only read
    readonly.mkdir(mode=0o755, exist_ok=True)
    os.chown(readonly, 0, 0)
    two_way = body | {"password": samba.password, "sync_mode": "two_way",
                      "admin_emails": ["ops@example.com"],
                      "server": f"smb://127.0.0.1:{samba.port}/{samba.share}/read-only"}
    checks = api.post("/connectors/test", json=two_way).json()["checks"]
    assert [(c["check"], c["ok"]) for c in checks] == [
        ("logon", True), ("folder", True), ("write access", False)]
    assert checks[2]["field"] == "username" and "create files" in checks[2]["message"]
    saved = api.post("/connectors", json=two_way)
    assert saved.status_code == 422 and saved.json()["detail"][0]["loc"] == ["body", "username"]
    one_way = api.post("/connectors/test", json=two_way | {"sync_mode": "one_way"}).json()
    assert one_way["ok"]  # one-way only reads


def test_a_password_changed_at_the_server_holds_the_connector_and_patch_resumes_it(
        stack, samba, s3):
    api = stack.api()
    write(samba.share_dir / "creds", "a.txt", b"a")
    samba.set_password("rotated", "first-Pw-1")
    c = new_connector(api, samba, "creds", "creds", username="rotated", password="first-Pw-1")
    assert wait_run(api, c["id"])["status"]["run"]["outcome"] == "success"
    samba.set_password("rotated", "second-Pw-2")  # rotated at the file server, not here
    samba.drop_connections()  # sessions logged on before outlive a change: end them
    view = sync_and_wait(api, c["id"])
    assert view["status"]["state"] == "auth_failed" and view["status"]["run"]["outcome"] == "failed"
    assert "auth" in view["status"]["last_error"]
    assert view["status"]["auth_error_plain"] == view["status"]["last_error_plain"] == \
        view["status"]["run"]["error_plain"] == PLAIN["auth_failed"]  # the raw text is kept too
    assert api.get(f"/connectors/{c['id']}/failures").json()[0]["cause"] == "auth_failed"
    audit = api.get("/audit", params={"connector_id": c["id"]}).json()
    assert [a["event"] for a in audit] == ["connector.auth_failed", "connector.created"]
    assert audit[0]["actor"] == "system"  # no admin did that: the service found it
    assert api.post(f"/connectors/{c['id']}/sync").status_code == 409
    refused = api.patch(f"/connectors/{c['id']}", json={"password": "still-wrong-3"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == [
        "body", "password"]

    write(samba.share_dir / "creds", "b.txt", b"b")
    patched = api.patch(f"/connectors/{c['id']}", json={"password": "second-Pw-2"})
    assert patched.status_code == 200 and patched.json()["config_version"] == 2
    view = wait_run(api, c["id"], after=view["status"]["run"]["run_id"])  # starts by itself
    assert view["status"]["state"] == "idle" and view["status"]["run"]["outcome"] == "success"
    assert {"a.txt", "b.txt"} <= set(bucket_tree(s3.client(), "creds"))


def test_secrets_never_leave_the_store(stack, samba):
    """Responses, service logs (at DEBUG), Redis values and broker queues: no password."""
    api = stack.api()
    write(samba.share_dir / "secret", "x.txt", b"x")
    c = new_connector(api, samba, "secret", "secret")
    wait_run(api, c["id"])
    password = samba.password
    for resp in (api.get(f"/connectors/{c['id']}"), api.get("/connectors"),
                 api.patch(f"/connectors/{c['id']}", json={"schedule": "2h"}),
                 api.post(f"/connectors/{c['id']}/pause"),
                 api.post(f"/connectors/{c['id']}/resume")):
        assert resp.status_code == 200
        assert password not in resp.text and "password" not in resp.json()
    assert password not in stack.logs()
    for key, value in stored_values(stack.ns).items():
        assert password not in value, key
    assert password not in json.dumps(asyncio.run(_peek_dead(stack.ns)))


def test_poison_message_is_dead_lettered_with_its_error(stack):
    bodies = asyncio.run(_poison(stack.ns))
    assert any(h.get("x-error-class") == "UnknownMessage" for h in bodies), bodies


async def _poison(ns: str) -> list[dict]:
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        ex = await ch.get_exchange(f"{ns}.commands")
        await ex.publish(aio_pika.Message(b"\xff not json", type="Garbage"), routing_key="scan")
        await asyncio.sleep(2)
        return [m["headers"] for m in await _peek_dead(ns)]


async def _peek_dead(ns: str) -> list[dict]:
    """Read (and requeue) what sits in the operators' dead-letter queue."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        q = await ch.get_queue(f"{ns}.dead")
        seen = []
        while (msg := await q.get(fail=False, no_ack=False)) is not None:
            seen.append({"body": msg.body.decode(errors="replace"),
                         "headers": {k: str(v) for k, v in (msg.headers or {}).items()}})
        return seen


def test_a_two_way_connector_with_nobody_to_tell_is_refused(s3, samba, tmp_path_factory):
    """Manual review needs someone to mail: the connector's own admin_emails, or
    SCAIDRIVE_ADMIN_EMAILS for every connector (the session's stacks set it)."""
    bare = Stack(s3, tmp_path_factory.mktemp("no-admins"), SCAIDRIVE_ADMIN_EMAILS="").start_api()
    try:
        api = bare.api()
        samba.mkdir("nobody-told")
        assert api.post("/shares", json={"name": "nobody-told"}).status_code == 201
        body = {"name": "nobody-told", "kind": "smb", "target_share": "nobody-told",
                "schedule": "1h", "sync_mode": "two_way", "username": samba.username,
                "password": samba.password,
                "server": f"smb://127.0.0.1:{samba.port}/{samba.share}/nobody-told"}
        refused = api.post("/connectors", json=body)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "admin_emails"]
        assert "needs someone to tell" in refused.json()["detail"][0]["msg"]
        assert api.post("/connectors", json=body | {"conflict_policy": "newer"}).status_code == 201
        assert api.post("/shares", json={"name": "told"}).status_code == 201
        made = api.post("/connectors", json=body | {"name": "told", "target_share": "told",
                                                    "admin_emails": ["ops@example.com"]})
        assert made.status_code == 201
        cleared = api.patch(f"/connectors/{made.json()['id']}", json={"admin_emails": []})
        assert cleared.status_code == 422
    finally:
        bare.stop()
