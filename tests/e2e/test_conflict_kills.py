"""The conflict service SIGKILLed while it tells admins about a burst of conflicts (issue 23):
every conflict still ends with one e-mail and one `conflict.detected` event, nothing is
dead-lettered, and a notice that fails for good shows on the conflict with a way to send it
again.

A stack of its own (the API and the conflict service, as processes) mails an SMTP server
that can hold a session at RCPT (nothing accepted yet: the event is out, the mail is not) or
after DATA is stored (the relay has the mail; the service has not recorded it), so each kill
lands at a known step. A mail the relay had when its sender was killed is sent again with
the same Message-ID, and only such a mail: the copy is recognisable as the same e-mail.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import aio_pika
import pytest

from shared.contracts import ConflictDetected, FileVersion, SideVersion
from tests.e2e.sharepoint_helpers import new_site, new_sp_connector
from tests.fixtures.smtp import Mailbox, SmtpServer
from tests.fixtures.stack import AMQP_URL, Stack

pytestmark = pytest.mark.e2e
ADMIN = "kills@contoso.com"
BURST = 20


class GatedBox(Mailbox):
    """A mailbox whose sessions can be held at RCPT, or right after DATA was stored."""

    def __init__(self):
        super().__init__()
        self.hold_rcpt = self.hold_data = False
        self.at_rcpt = 0  # sessions held at RCPT now
        self.held_after_data: list[str] = []  # conflict ids stored while DATA was held

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.at_rcpt += 1
        try:
            while self.hold_rcpt:  # noqa: ASYNC110 - set from the test's thread
                await asyncio.sleep(0.05)
        finally:
            self.at_rcpt -= 1
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if self.hold_data:
            with self.lock:
                self.held_after_data.append(self.received[-1][1]["X-ScaiDrive-Conflict-Id"])
            while self.hold_data:  # noqa: ASYNC110 - set from the test's thread
                await asyncio.sleep(0.05)
        return reply


@pytest.fixture(scope="module")
def gated():
    server = SmtpServer()
    server.box = GatedBox()
    server.controller.handler = server.box
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kstack(s3, graph, gated, tmp_path_factory):
    st = Stack(s3, tmp_path_factory.mktemp("kill-logs"), graph, gated).start_api()
    st.spawn("conflicts")
    yield st
    st.stop()


@pytest.fixture(scope="module")
def connector(kstack, graph):
    site = new_site(graph)
    graph.add_library(site, "Documents")
    return new_sp_connector(kstack.api(), graph, site, "Documents", "kills",
                            admin_emails=[ADMIN])


def conflict(c: dict, n: int) -> ConflictDetected:
    return ConflictDetected(
        conflict_id=uuid.uuid4().hex[:16], connector_id=c["id"], connector_name=c["name"],
        path=f"burst/{n:02d}.txt", source=SideVersion(size=n, etag=f"s{n}"),
        scaidrive=SideVersion(size=n + 1, etag=f"t{n}"),
        source_version=FileVersion(size=n, mtime_ns=n), detected_at=datetime.now(UTC))


async def publish(ns: str, msgs: list, exchange: str = "commands", key: str = "conflict",
                  headers: dict | None = None) -> None:
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ex = await (await conn.channel()).get_exchange(f"{ns}.{exchange}")
        for m in msgs:
            await ex.publish(aio_pika.Message(m.model_dump_json().encode(), type=type(m).__name__,
                                              content_type="application/json", headers=headers),
                             routing_key=key)


class Tap:
    """A platform consumer's queue on `conflict.detected`: every copy, with its message id."""

    async def open(self, ns: str) -> Tap:
        self.conn = await aio_pika.connect(AMQP_URL)
        ch = await self.conn.channel()
        self.queue = await ch.declare_queue(f"{ns}.test-kills-{uuid.uuid4().hex[:6]}",
                                            auto_delete=True)
        await self.queue.bind(f"{ns}.events", "conflict.detected")
        self.got: list[tuple[str | None, str]] = []  # (message id, conflict id)
        return self

    async def drain(self) -> list[tuple[str | None, str]]:
        while (m := await self.queue.get(fail=False)) is not None:
            await m.ack()
            self.got.append((m.message_id, json.loads(m.body)["conflict_id"]))
        return self.got

    async def close(self) -> None:
        await self.conn.close()


async def until(check: Callable[[], bool], what: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s} s: {what}"
        await asyncio.sleep(0.1)


def restart(st: Stack, label: str) -> str:
    st.kill(label)  # SIGKILL
    return st.spawn("conflicts")


async def queue_depth(ns: str, short: str) -> int:
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        q = await (await conn.channel()).declare_queue(f"{ns}.{short}", passive=True)
        return q.declaration_result.message_count or 0


async def test_killed_at_every_step_every_conflict_is_mailed_and_announced_once(
        kstack, gated, connector):
    box, api, ns = gated.box, kstack.api(), kstack.ns
    msgs = [conflict(connector, n) for n in range(BURST)]
    ids = {m.conflict_id for m in msgs}
    tap = await Tap().open(ns)
    label = "conflicts"

    def mails() -> list:
        return [m for m in gated.messages(ADMIN) if m["X-ScaiDrive-Conflict-Id"] in ids]

    try:
        box.hold_rcpt = True
        await publish(ns, msgs)
        await asyncio.sleep(0.3)
        label = restart(kstack, label)  # 1: while recording the burst
        await until(lambda: box.at_rcpt >= 3, "sessions held at RCPT")
        label = restart(kstack, label)  # 2: events out, mails not accepted
        box.hold_data, box.hold_rcpt = True, False
        await until(lambda: len(box.held_after_data) >= 3, "mails held after DATA")
        label = restart(kstack, label)  # 3: the relay has mails their sender never recorded
        held = set(box.held_after_data)
        box.hold_data = False
        await until(lambda: len({m["X-ScaiDrive-Conflict-Id"] for m in mails()}) >= BURST - 8,
                    "mails flowing again")
        label = restart(kstack, label)  # 4: wherever it is
        await until(lambda: len({m["X-ScaiDrive-Conflict-Id"] for m in mails()}) == BURST,
                    "every conflict mailed", within_s=45)

        await until(lambda: all(r["mailed"] and r["published_detected"] for r in
                                api.get("/conflicts", params={"connector": connector["id"]})
                                .json()), "every record flagged")
        records = api.get("/conflicts", params={"connector": connector["id"]}).json()
        assert len(records) == BURST
        assert not [r for r in records if r["notify_failed"]]

        by_conflict: dict[str, set[str]] = {}
        for m in mails():
            by_conflict.setdefault(m["X-ScaiDrive-Conflict-Id"], set()).add(m["Message-ID"])
        assert {c: len(v) for c, v in by_conflict.items()} == dict.fromkeys(ids, 1)
        copies = Counter(m["X-ScaiDrive-Conflict-Id"] for m in mails())
        assert {c for c, n in copies.items() if n > 1} <= held  # only mails the relay had
        assert held and all(copies[c] <= 2 for c in held)

        events = await tap.drain()
        assert {c for _mid, c in events} == ids
        assert all(mid == f"conflict.detected:{c}" for mid, c in events)
        print(f"mail copies {sum(copies.values())} for {BURST} conflicts ({len(held)} held "
              f"after DATA at a kill); events {len(events)}")
        assert await queue_depth(ns, "dead") == 0  # nothing dead-lettered
        assert await queue_depth(ns, "conflicts") == 0
    finally:
        box.hold_rcpt = box.hold_data = False
        await tap.close()


async def test_a_notice_failing_for_good_shows_and_is_sent_again_on_request(
        kstack, gated, connector):
    api, ns = kstack.api(), kstack.ns
    msg = conflict(connector, 90)
    gated.refuse_next(100)  # the relay refuses everything: 3 tries (the stack's limit)
    try:
        await publish(ns, [msg])
        await until(lambda: api.get(f"/conflicts/{msg.conflict_id}").json().get("notify_failed"),
                    "notify_failed shown", within_s=40)
    finally:
        gated.refuse_next(0)
    rec = api.get(f"/conflicts/{msg.conflict_id}").json()
    assert rec["notify_failed"].startswith("SMTP") and "451" in rec["notify_failed"]
    assert (rec["mailed"], rec["published_detected"], rec["notify_attempts"]) == (False, True, 3)
    assert not [m for m in gated.messages(ADMIN)
                if m["X-ScaiDrive-Conflict-Id"] == msg.conflict_id]

    resp = api.post(f"/conflicts/{msg.conflict_id}/notify")
    assert resp.status_code == 202, resp.text
    assert resp.json()["notify_failed"] is None
    await until(lambda: api.get(f"/conflicts/{msg.conflict_id}").json()["mailed"], "re-sent")
    assert len([m for m in gated.messages(ADMIN)
                if m["X-ScaiDrive-Conflict-Id"] == msg.conflict_id]) == 1
    assert api.post(f"/conflicts/{msg.conflict_id}/notify").status_code == 409
    assert api.post("/conflicts/nope/notify").status_code == 404
    audit = api.get("/audit", params={"event": "conflict.notify_requested"}).json()
    assert [a["conflict_id"] for a in audit] == [msg.conflict_id]


async def test_a_dead_lettered_detection_is_shown_on_its_conflict(kstack, gated, connector):
    api, ns = kstack.api(), kstack.ns
    msg = conflict(connector, 91)
    # As the broker dead-letters a detection: onto the dead-letter exchange, with its error.
    await publish(ns, [msg], exchange="dead", key="",
                  headers={"x-error": "RuntimeError: boom", "x-error-class": "RuntimeError"})
    await until(lambda: api.get(f"/conflicts/{msg.conflict_id}").status_code == 200 and
                api.get(f"/conflicts/{msg.conflict_id}").json()["notify_failed"],
                "the dead letter shown")
    rec = api.get(f"/conflicts/{msg.conflict_id}").json()
    assert rec["notify_failed"] == "the detection was dead-lettered: RuntimeError: boom"
    assert rec["state"] == "open" and not rec["mailed"]
    assert api.post(f"/conflicts/{msg.conflict_id}/notify").status_code == 202
    await until(lambda: api.get(f"/conflicts/{msg.conflict_id}").json()["mailed"], "sent")
    rec = api.get(f"/conflicts/{msg.conflict_id}").json()
    assert rec["published_detected"] and rec["notify_failed"] is None


async def test_the_console_shows_a_failed_notice_and_sends_it_again(
        kstack, gated, connector, browser):
    from playwright.async_api import expect

    from tests.fixtures.browser import Console

    api, ns = kstack.api(), kstack.ns
    msg = conflict(connector, 92)
    await publish(ns, [msg], exchange="dead", key="", headers={"x-error": "RuntimeError: lost"})
    await until(lambda: api.get(f"/conflicts/{msg.conflict_id}").status_code == 200 and
                api.get(f"/conflicts/{msg.conflict_id}").json()["notify_failed"],
                "the dead letter shown")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        con = Console(await context.new_page(), f"http://127.0.0.1:{kstack.port}",
                      "conflict_notify")
        page = con.page
        await con.open(f"connectors/{connector['id']}/conflicts")
        await page.get_by_label("Your name").fill("ops")
        await page.get_by_label("Admin token").fill(kstack.token)
        await page.get_by_role("button", name="Sign in").click()
        card = page.locator(f".conflict[data-id='{msg.conflict_id}']")
        notice = card.locator(".conflict-notice")
        await expect(notice).to_contain_text("Notification failed: the detection was "
                                             "dead-lettered: RuntimeError: lost")
        await con.shot("notice-failed")
        await card.get_by_role("button", name="Re-send notification").click()
        await expect(notice).to_contain_text("Notification sent.")
        assert api.get(f"/conflicts/{msg.conflict_id}").json()["mailed"]
        assert not con.errors, con.errors
    finally:
        await context.close()
