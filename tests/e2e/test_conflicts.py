"""Conflicts of two-way sync, end to end: the transfer worker's `ConflictDetected` (published
here, as the worker would, and redelivered), the conflict service (record, held path, one
email, one event), the API's resolve (202 once, 409 after) and the RESOLVED job, which the
transfer worker announces as `conflict.resolved` once it found neither side changed, or
supersedes (202 first, then `superseded` with the reason, nothing overwritten) if one did."""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime

import aio_pika
import pytest
import redis
import redis.asyncio as aioredis

from shared.contracts import ConflictDetected, FileVersion, SideVersion
from shared.store.conflict_records import ConflictStore
from shared.store.index_codec import Strings, record_of
from tests.e2e.sharepoint_helpers import EventTap, library_tree, new_site, new_sp_connector
from tests.fixtures.stack import AMQP_URL, CONSOLE_URL, LANES, REDIS_URL, wait_run

pytestmark = pytest.mark.e2e
ADMIN = "ops-conflicts@contoso.com"
FILES = ("manual.txt", "auto.txt", "stale-target.txt", "stale-source.txt", "race.txt",
         "retry.txt")


@pytest.fixture(scope="module")
def synced(stack, graph, s3):
    """A SharePoint connector whose files are in the bucket: the versions conflicts start from."""
    site = new_site(graph)
    drive = graph.add_library(site, "Documents")
    for name in FILES:
        graph.put_file(drive, name, f"source bytes of {name}".encode(),
                       modified_by_email="alice@contoso.com")
    api = stack.api()
    c = new_sp_connector(api, graph, site, "Documents", "conflicts", admin_emails=[ADMIN])
    view = wait_run(api, c["id"])
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{c['id']}/failures").text
    return {"cid": c["id"], "name": c["name"], "drive": drive, "share": "conflicts"}


def detected(stack, s3, synced, path: str, policy: str = "manual") -> ConflictDetected:
    """The conflict the transfer worker would report for `path`: the synced source version
    (from the index) against the object in the bucket, edited by someone in ScaiDrive."""
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True, encoding_errors="surrogateescape")
    labels = Strings().read(r.hgetall(f"{stack.ns}:labels:{synced['cid']}"))
    idx = asdict(record_of(r.hget(f"{stack.ns}:index:{synced['cid']}", path), labels))
    obj = s3.client().stat_object(synced["share"], path)
    return ConflictDetected(
        conflict_id=uuid.uuid4().hex[:16], connector_id=synced["cid"],
        connector_name=synced["name"], path=path,
        source=SideVersion(size=idx["size"], editor="alice@contoso.com", etag="src-" + path,
                           mtime=datetime.fromtimestamp(idx["mtime_ns"] / 1e9, UTC)),
        scaidrive=SideVersion(size=obj.size, mtime=obj.last_modified, editor="u-bob",
                              etag=obj.etag),
        source_version=FileVersion(size=idx["size"], mtime_ns=idx["mtime_ns"],
                                   file_id=idx["file_id"], content_tag=idx.get("content_tag")),
        policy=policy)


async def publish(ns: str, msg, times: int = 1) -> float:
    """Onto `{ns}.commands` with routing key `conflict`, as the transfer worker publishes."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        ex = await ch.get_exchange(f"{ns}.commands")
        for _ in range(times):
            await ex.publish(aio_pika.Message(msg.model_dump_json().encode(),
                                              type=type(msg).__name__,
                                              content_type="application/json"),
                             routing_key="conflict", mandatory=True)
    return time.monotonic()


STATS_LAG_S = 7  # rabbitmqctl's queue counts are statistics, emitted every 5 s


def settled(ns: str, since: float, timeout: float = 60) -> None:
    """Until `{ns}.conflicts` holds no message, ready or unacked (a retry waiting out its
    backoff is unacked): every delivery published before `since` (monotonic) was handled.
    Only a reading taken a full statistics interval after `since` counts."""
    deadline = time.monotonic() + timeout
    while True:
        taken = time.monotonic()
        out = subprocess.run(["rabbitmqctl", "list_queues", "-q", "--no-table-headers",
                              "name", "messages"], capture_output=True, text=True).stdout
        counts = dict(line.split() for line in out.splitlines() if line.strip())
        if taken - since >= STATS_LAG_S and counts.get(f"{ns}.conflicts") == "0":
            return
        assert time.monotonic() < deadline, f"{ns}.conflicts not drained: {counts}"
        time.sleep(0.5)


class Tap(EventTap):
    """EventTap on any exchange, with `rest()`: what else arrived (after `settled`)."""

    async def matching(self, conflict_id: str, n: int) -> list[dict]:
        """The next n messages about this conflict (others are skipped)."""
        found = []
        while len(found) < n:
            body = await self.get()
            if conflict_id in (body.get("conflict_id"), body.get("job_id")):
                found.append(body)
        return found

    async def rest(self, conflict_id: str) -> list[dict]:
        out = []
        while (msg := await self.queue.get(fail=False)) is not None:
            await msg.ack()
            body = json.loads(msg.body)
            if conflict_id in (body.get("conflict_id"), body.get("job_id")):
                out.append(body)
        return out


def mails(smtp, conflict_id: str) -> list:
    return [m for m in smtp.messages(ADMIN) if m["X-ScaiDrive-Conflict-Id"] == conflict_id]


def wait_mail(smtp, conflict_id: str, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while not (found := mails(smtp, conflict_id)):
        assert time.monotonic() < deadline, f"no email about conflict {conflict_id}"
        time.sleep(0.1)
    return found


def wait_state(api, conflict_id: str, state: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while (rec := api.get(f"/conflicts/{conflict_id}")).status_code != 200 or \
            rec.json()["state"] != state:
        assert time.monotonic() < deadline, f"conflict {conflict_id} not {state}: {rec.text}"
        time.sleep(0.2)
    return rec.json()


async def test_manual_conflict_is_mailed_and_announced_once_then_resolved_once(
        stack, s3, smtp, synced):
    api, cid = stack.api(), synced["cid"]
    msg = detected(stack, s3, synced, "manual.txt")
    events = await Tap(stack.ns, "conflict.*").open()
    # A copy of each transfer job of the connector's main shard (others' too: `matching` sorts).
    jobs = await Tap(stack.ns, LANES.routing_key("transfer", cid, "main"),
                     exchange="transfer").open()
    try:
        sent = await publish(stack.ns, msg, times=2)  # a redelivery: the same conflict
        (event,) = await events.matching(msg.conflict_id, 1)
        assert event["event"] == "conflict.detected" and event["path"] == "manual.txt"
        (mail,) = await asyncio.to_thread(wait_mail, smtp, msg.conflict_id)
        await asyncio.to_thread(settled, stack.ns, sent)
        assert len(mails(smtp, msg.conflict_id)) == 1
        assert await events.rest(msg.conflict_id) == []
        listed = api.get("/conflicts", params={"connector": cid, "state": "open"}).json()
        assert [c["id"] for c in listed] == [msg.conflict_id]
        assert listed[0]["mailed"] and listed[0]["scaidrive"]["etag"] == msg.scaidrive.etag

        body = mail.get_content()
        for text in (msg.source.etag, msg.scaidrive.etag, "alice@contoso.com", "u-bob",
                     f"{msg.source.size} bytes", f"{CONSOLE_URL}/connectors/{cid}",
                     f"POST /api/v1/conflicts/{msg.conflict_id}/resolve"):
            assert text in body, text
        st = ConflictStore(aioredis.from_url(REDIS_URL, decode_responses=True), stack.ns)
        assert (await st.held_paths(cid)).get("manual.txt") == msg.conflict_id

        resp = api.post(f"/conflicts/{msg.conflict_id}/resolve",
                        json={"winner": "scaidrive", "resolved_by": "carol@contoso.com"})
        assert resp.status_code == 202, resp.text
        assert resp.json()["state"] == "resolved" and resp.json()["winner"] == "scaidrive"
        again = api.post(f"/conflicts/{msg.conflict_id}/resolve", json={"winner": "source"})
        assert again.status_code == 409 and "carol@contoso.com" in again.json()["detail"]
        sent = time.monotonic()  # the API's decision is on its way

        (job,) = await jobs.matching(msg.conflict_id, 1)
        assert (job["kind"], job["winner"], job["conflict_id"], job["path"]) == \
            ("resolved", "scaidrive", msg.conflict_id, "manual.txt")
        assert job["target_etag"] == msg.scaidrive.etag
        assert job["version"] == msg.source_version.model_dump()
        (event,) = await events.matching(msg.conflict_id, 1)
        assert (event["event"], event["winner"], event["resolved_by"], event["automatic"]) == \
            ("conflict.resolved", "scaidrive", "carol@contoso.com", False)
        await asyncio.to_thread(settled, stack.ns, sent)
        assert await events.rest(msg.conflict_id) == []
        rec = api.get(f"/conflicts/{msg.conflict_id}").json()
        assert (rec["state"], rec["winner"], rec["resolved_by"]) == \
            ("resolved", "scaidrive", "carol@contoso.com")
        audit = api.get("/audit", params={"connector_id": cid, "event": "conflict.resolved"})
        assert audit.json()[0]["conflict_id"] == msg.conflict_id

        await st.applied(msg.conflict_id)  # the transfer worker's call once it applied it
        assert "manual.txt" not in await st.held_paths(cid)
        await st.r.aclose()
    finally:
        await events.close()
        await jobs.close()


async def test_automatic_policy_resolves_without_email(stack, s3, smtp, synced):
    api = stack.api()
    msg = detected(stack, s3, synced, "auto.txt", policy="source_wins")
    events = await Tap(stack.ns, "conflict.*").open()
    jobs = await Tap(stack.ns, LANES.routing_key("transfer", synced["cid"], "main"),
                     exchange="transfer").open()
    try:
        sent = await publish(stack.ns, msg, times=2)
        detected_ev, resolved_ev = await events.matching(msg.conflict_id, 2)
        assert (detected_ev["event"], resolved_ev["event"]) == \
            ("conflict.detected", "conflict.resolved")
        assert (resolved_ev["winner"], resolved_ev["resolved_by"], resolved_ev["automatic"]) == \
            ("source", "policy:source_wins", True)
        job = (await jobs.matching(msg.conflict_id, 1))[0]
        assert (job["kind"], job["winner"]) == ("resolved", "source")
        await asyncio.to_thread(settled, stack.ns, sent)
        assert await events.rest(msg.conflict_id) == []
        assert mails(smtp, msg.conflict_id) == []
        rec = api.get(f"/conflicts/{msg.conflict_id}").json()
        assert (rec["state"], rec["automatic"], rec["resolved_by"]) == \
            ("resolved", True, "policy:source_wins")
        assert api.post(f"/conflicts/{msg.conflict_id}/resolve",
                        json={"winner": "scaidrive"}).status_code == 409
    finally:
        await events.close()
        await jobs.close()


async def _open_conflict(stack, s3, synced, path: str) -> ConflictDetected:
    msg = detected(stack, s3, synced, path)
    await publish(stack.ns, msg)
    await asyncio.to_thread(wait_state, stack.api(), msg.conflict_id, "open")
    return msg


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _assert_superseded(stack, s3, graph, synced, msg, side: str, winner: str,
                             on_source: bytes, in_scaidrive: bytes) -> None:
    """A decision on a conflict one side of which changed since detection: the API takes it
    (202, it does no I/O), the transfer worker finds the change and supersedes the conflict
    with the reason instead of applying it; both sides keep what they hold."""
    api, path = stack.api(), msg.path
    events = await Tap(stack.ns, "conflict.*").open()
    try:
        resp = api.post(f"/conflicts/{msg.conflict_id}/resolve",
                        json={"winner": winner, "resolved_by": "dave@contoso.com"})
        assert resp.status_code == 202, resp.text
        assert (resp.json()["state"], resp.json()["winner"]) == ("resolved", winner)
        rec = await asyncio.to_thread(wait_state, api, msg.conflict_id, "superseded")
        reason = f"the {side} version changed since detection"
        assert (rec["reason"], rec["winner"], rec["applied_at"]) == (reason, winner, None)
        (event,) = await events.matching(msg.conflict_id, 1)  # no conflict.resolved before it
        assert (event["event"], event["reason"], event["winner"], event["resolved_by"]) == \
            ("conflict.superseded", reason, winner, "dave@contoso.com")
        st = ConflictStore(aioredis.from_url(REDIS_URL, decode_responses=True), stack.ns)
        assert path not in await st.held_paths(synced["cid"])  # the next run re-detects it
        await st.r.aclose()
        again = api.post(f"/conflicts/{msg.conflict_id}/resolve", json={"winner": "source"})
        assert again.status_code == 409, again.text
        assert "superseded" in again.json()["detail"] and reason in again.json()["detail"]

        # Nothing overwritten on either side.
        assert library_tree(graph, synced["drive"])[path] == _sha(on_source)
        obj = s3.client().get_object(synced["share"], path)
        try:
            assert obj.read() == in_scaidrive
        finally:
            obj.close()
            obj.release_conn()
        audit = api.get("/audit", params={"connector_id": synced["cid"],
                                          "event": "conflict.superseded"}).json()
        assert [(a["conflict_id"], a["reason"], a["actor"]) for a in audit
                if a["conflict_id"] == msg.conflict_id] == [(msg.conflict_id, reason, "system")]
        assert await events.rest(msg.conflict_id) == []  # and never conflict.resolved
    finally:
        await events.close()


async def test_changed_scaidrive_version_makes_the_decision_stale(stack, s3, graph, synced):
    msg = await _open_conflict(stack, s3, synced, "stale-target.txt")
    data = b"edited again in ScaiDrive"
    s3.client().put_object(synced["share"], "stale-target.txt", io.BytesIO(data), len(data))
    # "source" would have replaced ScaiDrive's new edit: it is superseded instead.
    await _assert_superseded(stack, s3, graph, synced, msg, "ScaiDrive", "source",
                             on_source=b"source bytes of stale-target.txt", in_scaidrive=data)


async def test_changed_source_version_makes_the_decision_stale(stack, s3, graph, synced):
    msg = await _open_conflict(stack, s3, synced, "stale-source.txt")
    data = b"edited again at the source"
    graph.put_file(synced["drive"], "stale-source.txt", data)
    # "scaidrive" would have replaced the source's new edit: it is superseded instead.
    await _assert_superseded(stack, s3, graph, synced, msg, "source", "scaidrive",
                             on_source=data, in_scaidrive=b"source bytes of stale-source.txt")


async def test_two_resolves_at_once_only_one_wins(stack, s3, synced):
    msg = await _open_conflict(stack, s3, synced, "race.txt")
    url = f"/conflicts/{msg.conflict_id}/resolve"

    def post(winner: str):
        return stack.api().post(url, json={"winner": winner, "resolved_by": winner + "-admin"})

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, ["source", "scaidrive", "keep_both", "source"]))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409, 409, 409], [a.text for a in answers]
    winner = next(a.json() for a in answers if a.status_code == 202)
    rec = stack.api().get(f"/conflicts/{msg.conflict_id}").json()
    assert (rec["winner"], rec["resolved_by"]) == (winner["winner"], winner["resolved_by"])


async def test_smtp_failure_is_retried_and_mails_once(stack, s3, smtp, synced):
    smtp.refuse_next(1)  # a busy relay: 451 for the first attempt
    msg = detected(stack, s3, synced, "retry.txt")
    sent = await publish(stack.ns, msg)
    await asyncio.to_thread(settled, stack.ns, sent)
    assert len(mails(smtp, msg.conflict_id)) == 1
    assert stack.api().get(f"/conflicts/{msg.conflict_id}").json()["mailed"] is True


def test_unknown_conflict_is_404_and_bad_winner_422(stack):
    api = stack.api()
    assert api.get("/conflicts/nope").status_code == 404
    assert api.post("/conflicts/nope/resolve", json={"winner": "source"}).status_code == 404
    assert api.post("/conflicts/nope/resolve", json={"winner": "both"}).status_code == 422
    assert api.get("/conflicts", params={"state": "weird"}).status_code == 422
