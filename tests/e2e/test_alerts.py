"""Alert mails (services/conflicts/alerts.py) through a real SMTP server (aiosmtpd): one mail
per new condition, none while it holds, another once it cleared and came back; and the refusal
of a SharePoint site the application has no grant for (Sites.Selected), on save and in a run.

The stack is this module's own: its conflict service sweeps every 0.3 s (SCAIDRIVE_ALERT_SWEEP_S).
Each test mails its own address, so the session's mailbox is shared safely. The scheduler's
usage recount and quota check (services/scheduler/usage_recount.py) run here in the test's own
process, on the stack's Redis, bucket and broker, as the scheduler's loop calls them.
"""
from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis

from services.scheduler import usage_recount
from services.scheduler.usage_recount import Recount
from shared.app.runtime import Runtime
from shared.config.settings import Settings
from shared.store.usage_records import UsageRecords
from tests.e2e.helpers import new_connector, write
from tests.e2e.sharepoint_helpers import EventTap, new_site, new_sp_connector, sp_body
from tests.fixtures.stack import REDIS_URL, Stack, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
QUIET_S = 2.0  # several sweeps: long enough for a wrong second mail to show up


@pytest.fixture(scope="module")
def alert_stack(s3, graph, smtp, tmp_path_factory):
    st = Stack(s3, tmp_path_factory.mktemp("alert-logs"), graph, smtp,
               SCAIDRIVE_ALERT_SWEEP_S="0.3").start(transfer_workers=1)
    yield st
    st.stop()


def _admin() -> str:
    return f"admin-{uuid.uuid4().hex[:8]}@example.com"


def _alerts(smtp, to: str, kind: str) -> list:
    return [m for m in smtp.messages(to) if m["X-ScaiDrive-Alert"] == kind]


def _wait_alerts(smtp, to: str, kind: str, count: int, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while len(found := _alerts(smtp, to, kind)) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} {kind} mail(s) to {to}"
        time.sleep(0.1)
    time.sleep(QUIET_S)  # and no more than that
    found = _alerts(smtp, to, kind)
    assert len(found) == count, [m["Subject"] for m in found]
    return found


def _records(stack, cid: str) -> dict:
    return redis.Redis.from_url(REDIS_URL, decode_responses=True).hgetall(
        f"{stack.ns}:alerts:{cid}")


def _wait_cleared(stack, cid: str, condition: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while condition in _records(stack, cid):
        assert time.monotonic() < deadline, f"{condition} never cleared"
        time.sleep(0.1)


def test_held_deletions_mail_once_while_held_and_again_for_a_new_set(alert_stack, samba, smtp):
    root, admin = samba.share_dir / "alert-held", _admin()
    for i in range(8):
        write(root, f"f{i}.txt", b"keep me")
    api = alert_stack.api()
    cid = new_connector(api, samba, "alert-held", "alert-held", admin_emails=[admin])["id"]
    wait_run(api, cid)
    for i in range(5):
        (root / f"f{i}.txt").unlink()
    view = sync_and_wait(api, cid)
    assert view["status"]["run"]["deletes_held"] == 5
    [mail] = _wait_alerts(smtp, admin, "deletes_held", 1)
    assert "alert-held" in mail["Subject"] and "5 deletion(s) held" in mail["Subject"]
    body = mail.get_content()
    assert f"/api/v1/connectors/{cid}/held-deletes/approve" in body and "None of them" in body

    view = sync_and_wait(api, cid)  # still held on the next run: no second mail
    _wait_alerts(smtp, admin, "deletes_held", 1)

    assert api.post(f"/connectors/{cid}/held-deletes/reject").json()["count"] == 5
    _wait_cleared(alert_stack, cid, "deletes_held")
    # The rejection has a run start at once: done before the share changes again (else the
    # files deleted next may be seen by that run, and no run is left for the sync below).
    wait_run(api, cid, after=view["status"]["run"]["run_id"])
    for i in (5, 6):
        (root / f"f{i}.txt").unlink()
    view = sync_and_wait(api, cid)
    assert view["status"]["run"]["deletes_held"] == 2
    second = _wait_alerts(smtp, admin, "deletes_held", 2)[-1]
    assert "2 deletion(s) held" in second["Subject"]


@pytest.fixture
async def rt(alert_stack, monkeypatch):
    """A runtime of the stack's namespace in this process (the scheduler's side)."""
    for key, value in alert_stack.env.items():
        if key.startswith("SCAIDRIVE_"):
            monkeypatch.setenv(key, value)
    runtime = await Runtime.open(Settings())  # type: ignore[call-arg]
    yield runtime
    await runtime.close()


def _usage_key(stack, share: str) -> str:
    return f"{stack.ns}:usage:{share}"


async def test_refused_secret_mails_once_per_incident(alert_stack, graph, smtp):
    site, admin = new_site(graph), _admin()
    drive = graph.add_library(site, "Documents")
    graph.put_file(drive, "a.txt", b"a")
    api = alert_stack.api()
    cid = new_sp_connector(api, graph, site, "Documents", "alert-auth", admin_emails=[admin])["id"]
    await asyncio.to_thread(wait_run, api, cid)
    old_secret = graph.client_secret
    try:
        for incident in (1, 2):
            graph.revoke_secret()
            graph.revoke_tokens()
            view = await asyncio.to_thread(sync_and_wait, api, cid)
            assert view["status"]["state"] == "auth_failed"
            mails = await asyncio.to_thread(_wait_alerts, smtp, admin, "auth_failed", incident)
            assert "AADSTS7000215" in mails[-1].get_content()
            assert "syncing stopped" in mails[-1]["Subject"]
            new_secret = "n3w~" + uuid.uuid4().hex
            graph.restore_secret(new_secret)
            resp = api.patch(f"/connectors/{cid}", json={"client_secret": new_secret})
            assert resp.status_code == 200 and resp.json()["status"]["state"] != "auth_failed"
            await asyncio.to_thread(wait_run, api, cid, after=view["status"]["run"]["run_id"])
            await asyncio.to_thread(_wait_cleared, alert_stack, cid, "auth_failed")
    finally:
        if not graph.tenant.secrets:
            graph.restore_secret(old_secret)
        api.delete(f"/connectors/{cid}")


def test_a_site_without_a_grant_is_refused_on_save(alert_stack, graph):
    site = new_site(graph)
    graph.add_library(site, "Documents")
    graph.deny_site(site)
    api = alert_stack.api()
    assert api.post("/shares", json={"name": "alert-nogrant"}).status_code == 201
    resp = api.post("/connectors", json=sp_body(graph, site, "Documents", "alert-nogrant"))
    assert resp.status_code == 422, resp.text
    [problem] = resp.json()["detail"]
    assert problem["loc"] == ["body", "site_url"]
    assert "Sites.Selected" in problem["msg"] and "Sites.ReadWrite.All" in problem["msg"]
    assert "403" in problem["msg"]
    resp = api.post("/connectors/test", json=sp_body(graph, site, "Documents", "alert-nogrant"))
    assert resp.status_code == 422 and "Sites.Selected" in resp.text


def test_a_grant_withdrawn_holds_the_connector_with_a_plain_message(alert_stack, graph, smtp):
    site, admin = new_site(graph), _admin()
    drive = graph.add_library(site, "Documents")
    graph.put_file(drive, "a.txt", b"a")
    api = alert_stack.api()
    cid = new_sp_connector(api, graph, site, "Documents", "alert-grant", admin_emails=[admin])["id"]
    wait_run(api, cid)
    graph.deny_site(site)
    try:
        view = sync_and_wait(api, cid)
        status = view["status"]
        assert status["state"] == "auth_failed" and status["run"]["outcome"] == "failed"
        assert "Sites.Selected" in status["auth_error"] and "Sites.ReadWrite.All" in \
            status["auth_error"]
        [mail] = _wait_alerts(smtp, admin, "auth_failed", 1)
        assert "Sites.Selected" in mail.get_content()
    finally:
        graph.deny_site(site, denied=False)
    graph.put_file(drive, "b.txt", b"b")
    resp = api.patch(f"/connectors/{cid}", json={"client_secret": graph.client_secret})
    assert resp.status_code == 200, resp.text
    view = wait_run(api, cid, after=status["run"]["run_id"])
    assert view["status"]["run"]["outcome"] == "success"


def test_a_client_secret_expiring_within_30_days_mails_once_per_secret(alert_stack, graph, smtp):
    site, admin = new_site(graph), _admin()
    graph.add_library(site, "Documents")
    api = alert_stack.api()
    soon = datetime.now(UTC) + timedelta(days=10)
    cid = new_sp_connector(api, graph, site, "Documents", "alert-expiry", admin_emails=[admin],
                           secret_expires_at=soon.isoformat(), schedule="1d")["id"]
    [mail] = _wait_alerts(smtp, admin, "credential_expiry", 1)
    assert f"expires on {soon:%Y-%m-%d}" in mail.get_content()
    assert "client secret" in mail["Subject"]

    later = datetime.now(UTC) + timedelta(days=90)  # renewed: the warning ends
    assert api.patch(f"/connectors/{cid}", json={"secret_expires_at": later.isoformat()}) \
        .status_code == 200
    _wait_cleared(alert_stack, cid, "credential_expiry")
    _wait_alerts(smtp, admin, "credential_expiry", 1)
    again = datetime.now(UTC) + timedelta(days=5)
    assert api.patch(f"/connectors/{cid}", json={"secret_expires_at": again.isoformat()}) \
        .status_code == 200
    second = _wait_alerts(smtp, admin, "credential_expiry", 2)[-1]
    assert f"expires on {again:%Y-%m-%d}" in second.get_content()


def test_stale_mails_once_and_again_after_a_success(alert_stack, samba, smtp):
    """The scheduler's stale flag (set here as the scheduler sets it: its 3 periods are slow
    to wait for) mails once while it holds; a successful run clears it."""
    samba.write_file("alert-stale/a.txt", b"a")
    api, admin = alert_stack.api(), _admin()
    cid = new_connector(api, samba, "alert-stale", "alert-stale", admin_emails=[admin])["id"]
    wait_run(api, cid)
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    for incident in (1, 2):
        r.hset(f"{alert_stack.ns}:status:{cid}", "stale", "1")
        [*_, mail] = _wait_alerts(smtp, admin, "stale", incident)
        assert "no successful sync for 3 schedule periods" in mail["Subject"]
        assert f"/api/v1/connectors/{cid}/failures" in mail.get_content()
        sync_and_wait(api, cid)
        _wait_cleared(alert_stack, cid, "stale")


async def test_recount_sets_a_drifted_usage_to_the_bucket_total(alert_stack, samba, s3, rt):
    samba.write_file("alert-recount/a.bin", os.urandom(3000))
    samba.write_file("alert-recount/b.bin", os.urandom(5000))
    api = alert_stack.api()
    cid = new_connector(api, samba, "alert-recount", "alert-recount")["id"]
    await asyncio.to_thread(wait_run, api, cid)
    assert api.get("/shares/alert-recount").json()["usage_bytes"] == 8000
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    r.set(_usage_key(alert_stack, "alert-recount"), 123)  # drifted
    s3.client().put_object("alert-recount", "by-hand.bin", io.BytesIO(b"x" * 1000), 1000)
    changed = await usage_recount.check_shares(rt, hourly(rt))
    assert Recount("alert-recount", 123, 9000) in changed
    assert api.get("/shares/alert-recount").json()["usage_bytes"] == 9000

    r.set(_usage_key(alert_stack, "alert-recount"), 5)  # not due again within the interval
    changed = await usage_recount.check_shares(rt, hourly(rt))
    assert "alert-recount" not in {x.share for x in changed}
    assert api.get("/shares/alert-recount").json()["usage_bytes"] == 5


async def test_recount_leaves_a_usage_that_changed_while_counting(alert_stack, s3, rt,
                                                                  monkeypatch):
    api = alert_stack.api()
    assert api.post("/shares", json={"name": "alert-race"}).status_code == 201
    s3.client().put_object("alert-race", "f.bin", io.BytesIO(b"x" * 1000), 1000)
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    key = _usage_key(alert_stack, "alert-race")
    r.set(key, 10)
    real = usage_recount._bucket_total

    def counting_while_a_transfer_lands(runtime, share):
        total = real(runtime, share)
        r.incrby(key, 500)  # a transfer recorded its file meanwhile
        return total

    records = UsageRecords(rt.state)
    monkeypatch.setattr(usage_recount, "_bucket_total", counting_while_a_transfer_lands)
    assert await records.claim_recount("alert-race", 3600)
    assert await usage_recount.recount_share(rt, records, "alert-race", []) is None
    assert r.get(key) == "510"  # the transfer's increment stands
    assert await records.claim_recount("alert-race", 3600)  # due again at the next check
    monkeypatch.setattr(usage_recount, "_bucket_total", real)
    assert await usage_recount.recount_share(rt, records, "alert-race", []) == \
        Recount("alert-race", 510, 1000)


async def test_quota_warning_at_90_percent_once_per_crossing(alert_stack, samba, smtp, rt):
    api, admin = alert_stack.api(), _admin()
    assert api.post("/shares", json={"name": "alert-quota", "quota_bytes": 100_000}) \
        .status_code == 201
    samba.write_file("alert-quota/a.bin", os.urandom(92_000))
    resp = api.post("/connectors", json={
        "name": "alert-quota", "kind": "smb", "target_share": "alert-quota", "schedule": "1h",
        "server": f"smb://127.0.0.1:{samba.port}/{samba.share}/alert-quota",
        "username": samba.username, "password": samba.password, "admin_emails": [admin]})
    assert resp.status_code == 201, resp.text
    cid = resp.json()["id"]
    await asyncio.to_thread(wait_run, api, cid)
    cfg = hourly(rt)
    tap = await EventTap(alert_stack.ns, "share.quota_warning").open()
    try:
        for crossing in (1, 2):
            await usage_recount.check_shares(rt, cfg)
            event = await tap.get()
            assert (event["share"], event["usage_bytes"], event["quota_bytes"]) == \
                ("alert-quota", 92_000, 100_000)
            assert event["percent"] == 92.0 and cid in event["connector_ids"]
            mails = await asyncio.to_thread(_wait_alerts, smtp, admin, "quota", crossing)
            assert "alert-quota is 92% full" in mails[-1]["Subject"]
            assert "PATCH /api/v1/shares/alert-quota" in mails[-1].get_content()
            await usage_recount.check_shares(rt, cfg)  # still over the line: said once
            await asyncio.sleep(0.5)
            assert await tap.queue.get(fail=False) is None
            audit = api.get("/audit", params={"event": "share.quota_warning"}).json()
            assert [a["share"] for a in audit].count("alert-quota") == crossing
            assert api.patch("/shares/alert-quota", json={"quota_bytes": 1_000_000}) \
                .status_code == 200  # raised: the crossing is over
            await usage_recount.check_shares(rt, cfg)
            await asyncio.to_thread(_wait_cleared, alert_stack, cid, "quota")
            assert api.patch("/shares/alert-quota", json={"quota_bytes": 100_000}) \
                .status_code == 200  # and back: a new crossing
    finally:
        await tap.close()


def hourly(rt):
    """The runtime's settings with a recount due once an hour."""
    return rt.settings.model_copy(update={"usage_recount_s": 3600})
