"""What the console stands on: console sessions, per-day counters, queue depth, and the flags of
a connector that stopped succeeding or whose source suddenly lists empty."""
from __future__ import annotations

import hashlib
import time

import httpx
import pytest
import redis

from tests.e2e.helpers import bucket_tree, new_connector, write
from tests.fixtures.stack import REDIS_URL, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
CONSOLE = {"X-Requested-With": "scaidrive-console"}


def test_console_session_from_the_token(stack, samba):
    base = f"http://127.0.0.1:{stack.port}"
    with httpx.Client(base_url=base) as browser:
        assert browser.get("/").headers["location"] == "/console/"
        # The link in conflict emails opens the connector's conflicts in the console.
        linked = browser.get("/connectors/abc123")
        assert linked.headers["location"] == "/console/#/connectors/abc123/conflicts"
        wrong = browser.post("/api/v1/session", json={"token": "guess", "name": "mallory"})
        assert wrong.status_code == 401 and "scaidrive_session" not in browser.cookies
        assert browser.get("/api/v1/shares").status_code == 401

        login = browser.post("/api/v1/session", json={"token": stack.token, "name": "Dana Ops"})
        assert login.status_code == 204
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert browser.get("/api/v1/session").json() == {"name": "Dana Ops"}
        # A change on the strength of the cookie alone (a cross-site form) is refused.
        assert browser.post("/api/v1/shares", json={"name": "csrf-try"}).status_code == 403
        samba.mkdir("by-console")  # the folder is checked at the file server on save
        cid = new_connector(_Console(browser), samba, "by-console", "by-console")["id"]
        created = browser.get(f"/api/v1/audit?connector_id={cid}").json()
        assert [(e["event"], e["actor"]) for e in created] == [("connector.created", "Dana Ops")]
        # Redis holds neither the session id nor the token, only a hash of the id.
        r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        session_id = browser.cookies["scaidrive_session"]
        key = f"{stack.ns}:session:{hashlib.sha256(session_id.encode()).hexdigest()}"
        assert r.get(key) == '{"name": "Dana Ops"}'
        stored = {k: r.get(k) for k in r.scan_iter(f"{stack.ns}:session:*")}
        assert not any(session_id in k or stack.token in v or session_id in v
                       for k, v in stored.items())

        assert browser.delete("/api/v1/session", headers=CONSOLE).status_code == 204
        assert browser.get("/api/v1/shares").status_code == 401
        assert r.get(key) is None


class _Console:
    """The API as the console calls it: cookie plus the console header, paths under /api/v1."""

    def __init__(self, client: httpx.Client):
        self.client = client

    def post(self, path: str, **kw) -> httpx.Response:
        return self.client.post("/api/v1" + path, headers=CONSOLE, **kw)


def test_counters_per_day_queue_depth_and_actor(stack, samba, s3):
    for i in range(5):
        write(samba.share_dir / "mon", f"f{i}.txt", b"x" * (i + 1))
    api = stack.api()
    cid = new_connector(api, samba, "mon", "mon")["id"]
    wait_run(api, cid)
    stats = api.get(f"/connectors/{cid}/stats").json()
    for period in ("day", "week", "month"):
        assert stats["periods"][period]["files_transferred"] == 5
        assert stats["periods"][period]["bytes_transferred"] == 15
    assert stats["queue_depth"] == 0
    assert stats["share"] == {"name": "mon", "usage_bytes": 15, "quota_bytes": None}

    samba.make_unreadable_dir("mon/locked")
    write(samba.share_dir / "mon", "f5.txt", b"new")
    sync_and_wait(api, cid)
    day = api.get(f"/connectors/{cid}/stats").json()["periods"]["day"]
    assert (day["files_transferred"], day["files_errored"]) == (6, 1)
    listed = {c["id"]: c for c in api.get("/connectors").json()}[cid]
    assert listed["status"]["errors_today"] == 1 and listed["status"]["flags"] == []

    api.post(f"/connectors/{cid}/pause", headers={"X-ScaiDrive-Actor": "ops-bot"})
    paused = api.get(f"/audit?connector_id={cid}&event=connector.paused").json()
    assert paused[0]["actor"] == "ops-bot"


def test_stale_connector_is_flagged_and_cleared_by_a_success(stack, samba, s3):
    write(samba.share_dir / "stale", "a.txt", b"a")
    api = stack.api()
    cid = new_connector(api, samba, "stale", "stale")["id"]  # schedule 1h
    wait_run(api, cid)
    # Ten hours without a success (the clock moved on; the state says when it last worked).
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    r.hset(f"{stack.ns}:status:{cid}", "last_success_at", str(time.time() - 10 * 3600))
    deadline = time.monotonic() + 20
    while "stale" not in api.get(f"/connectors/{cid}").json()["status"]["flags"]:
        assert time.monotonic() < deadline, "never flagged stale"
        time.sleep(0.3)
    events = api.get(f"/audit?connector_id={cid}&event=connector.stale").json()
    assert len(events) == 1 and events[0]["actor"] == "system"
    sync_and_wait(api, cid)
    assert api.get(f"/connectors/{cid}").json()["status"]["flags"] == []


def test_a_source_that_lists_empty_deletes_nothing_until_approved(stack, samba, s3):
    root = samba.share_dir / "emptied"
    for i in range(4):
        write(root, f"f{i}.txt", b"keep me")
    api = stack.api()
    cid = new_connector(api, samba, "emptied", "emptied")["id"]
    wait_run(api, cid)
    for i in range(4):
        (root / f"f{i}.txt").unlink()
    view = sync_and_wait(api, cid)
    assert view["status"]["progress"]["files_deleted"] == 0
    assert view["status"]["run"]["deletes_held"] == 4
    assert view["status"]["flags"] == ["suspicious_empty"]
    assert len(bucket_tree(s3.client(), "emptied")) == 4  # ScaiDrive keeps everything
    events = {e["event"] for e in api.get(f"/audit?connector_id={cid}").json()}
    assert {"connector.suspicious_empty", "connector.deletes_held"} <= events

    assert api.post(f"/connectors/{cid}/held-deletes/approve").json()["count"] == 4
    view = wait_run(api, cid, after=view["status"]["run"]["run_id"])
    assert view["status"]["progress"]["files_deleted"] == 4
    assert bucket_tree(s3.client(), "emptied") == {}
