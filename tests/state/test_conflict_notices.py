"""A conflict's notices against the real Redis: the lease one process sends them under (renewed
while the work runs, taken over soon after its holder dies, never held by two), their
schedule (retried, given up on at the limit and shown as `notify_failed`, asked for again),
and the Notifier sending them once, with the same Message-ID and AMQP message id when a
process dies between a send and its flag."""
from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet

from services.conflicts import notices
from services.conflicts.lease import LeaseLost, exclusive
from services.conflicts.notices import Notifier
from shared.config.settings import ConflictSettings
from shared.contracts import ConflictDetected, FileVersion, SideVersion


@pytest.fixture(scope="module", params=["single", "cluster"])
def redis_mode(request):
    """Against the single server and a Redis Cluster (tests/state/conftest.py's `state`)."""
    return request.param


@pytest.fixture
def store(state):
    return state.conflicts


def conflict(cid: str, policy: str = "manual") -> ConflictDetected:
    return ConflictDetected(
        conflict_id=cid, connector_id="c1", connector_name="C", path=f"{cid}.txt",
        source=SideVersion(size=1, etag="s"), scaidrive=SideVersion(size=2, etag="t"),
        source_version=FileVersion(size=1, mtime_ns=5), policy=policy,
        detected_at=datetime(2026, 3, 1, tzinfo=UTC))


# --- the lease ------------------------------------------------------------------------------

async def test_a_renewed_lease_outlives_its_length_and_is_released_after(store):
    await store.create(conflict("l1"))
    stolen: list[str | None] = []

    async def work() -> None:
        await asyncio.sleep(1.2)  # twice the lease
        stolen.append(await store.claim("l1", "notice", 5))

    assert await exclusive(store, "l1", "notice", work, lease_s=0.6, renew_every_s=0.2)
    assert stolen == [None]  # still held at 1.2 s: renewed
    assert await store.claim("l1", "notice", 5)  # released at the end


async def test_a_dead_holders_lease_is_taken_over_once_it_runs_out(store):
    await store.create(conflict("l2"))
    assert await store.claim("l2", "notice", 0.5)  # a holder that then died: never renewed
    ran: list[int] = []

    async def work() -> None:
        ran.append(1)

    assert not await exclusive(store, "l2", "notice", work)
    await asyncio.sleep(0.6)
    assert await exclusive(store, "l2", "notice", work) and ran == [1]


async def test_of_many_at_once_one_works(store):
    await store.create(conflict("l3"))
    ran: list[int] = []

    async def work() -> None:
        ran.append(1)
        await asyncio.sleep(0.3)

    results = await asyncio.gather(*(exclusive(store, "l3", "notice", work) for _ in range(6)))
    assert sorted(results) == [False] * 5 + [True] and ran == [1]


async def test_a_holder_that_lost_its_lease_stops_its_work(store):
    await store.create(conflict("l4"))
    finished: list[int] = []

    async def work() -> None:
        await asyncio.sleep(0.5)  # stalled past its lease: someone takes over meanwhile
        assert await store.claim("l4", "notice", 5)
        await asyncio.sleep(2)
        finished.append(1)

    with pytest.raises(LeaseLost):
        await exclusive(store, "l4", "notice", work, lease_s=0.3, renew_every_s=0.8)
    assert finished == []


async def test_the_works_error_is_raised_and_the_lease_released(store):
    await store.create(conflict("l5"))

    async def work() -> None:
        raise ValueError("smtp said no")

    with pytest.raises(ValueError):
        await exclusive(store, "l5", "notice", work)
    assert await store.claim("l5", "notice", 5)


# --- the schedule ---------------------------------------------------------------------------

async def test_notices_are_retried_then_shown_failed_until_asked_again(store):
    await store.create(conflict("n1"))
    now = time.time()
    await store.notice_wanted("n1", now)
    await store.notice_wanted("n1", now + 100)  # scheduled already: kept as it was
    assert await store.notices_due(now, 10) == ["n1"]
    assert await store.notice_failed("n1", "SMTPDataError: 451", limit=3) == 1
    await store.notice_retry("n1", now + 2)
    assert await store.notices_due(now + 1, 10) == [] and await store.notices_due(now + 2, 10)
    assert await store.notice_failed("n1", "SMTPDataError: 451", limit=3) == 2
    assert await store.notice_failed("n1", "SMTPDataError: 554 no", limit=3) == 3
    rec = await store.get("n1")
    assert (rec["notify_failed"], rec["notify_attempts"]) == ("SMTPDataError: 554 no", 3)
    assert rec["notify_failed_at"] and await store.notices_pending() == 0
    await store.notice_retry("n1", now)  # a late retry does not bring it back
    assert await store.notices_due(now + 60, 10) == []

    await store.notice_requested("n1", now)  # an admin's re-send
    rec = await store.get("n1")
    assert (rec["notify_failed"], rec["notify_attempts"]) == (None, 0)
    assert await store.notices_due(now, 10) == ["n1"]
    await store.notice_sent("n1")
    assert await store.notices_pending() == 0


async def test_no_notice_state_for_an_unknown_conflict(store):
    assert await store.notice_failed("ghost", "x", limit=3) == -1
    assert not await store.mark_notice_failed("ghost", "x")
    assert await store.mail_message_id("ghost", "<a@b>") is None
    assert await store.get("ghost") is None


async def test_the_message_id_is_chosen_once(store):
    await store.create(conflict("m1"))
    assert await store.mail_message_id("m1", "<first@x>") == "<first@x>"
    assert await store.mail_message_id("m1", "<second@x>") == "<first@x>"
    assert (await store.get("m1"))["mail_message_id"] == "<first@x>"


async def test_forgetting_a_connector_drops_its_scheduled_notices(store):
    await store.create(conflict("f1"))
    await store.notice_wanted("f1", time.time())
    await store.forget_connector("c1")
    assert await store.notices_pending() == 0 and await store.get("f1") is None


# --- the Notifier ---------------------------------------------------------------------------

class Broker:
    def __init__(self):
        self.sent: list[tuple[str, str, str | None]] = []

    async def publish(self, exchange, key, msg, message_id=None):
        self.sent.append((key, msg.conflict_id, message_id))


def runtime(state, broker: Broker) -> SimpleNamespace:
    settings = ConflictSettings(s3_access_key="a", s3_secret_key="b", delivery_limit=3,
                                secret_key=Fernet.generate_key().decode(),
                                smtp_from="bot@scaidrive.test")
    admins = SimpleNamespace(admin_emails=["ops@example.com"])

    async def connector(_cid):
        return admins

    return SimpleNamespace(settings=settings, broker=broker,
                           state=SimpleNamespace(conflicts=state.conflicts, connector=connector))


async def test_a_notifier_killed_after_sending_is_followed_by_one_copy_of_the_same_mail(
        state, monkeypatch):
    store, broker, mails = state.conflicts, Broker(), []
    await store.create(conflict("k1"))
    await store.notice_wanted("k1", time.time())
    hang = asyncio.Event()

    async def send_then_die(_settings, mail) -> None:
        mails.append(mail["Message-ID"])
        if len(mails) == 1:
            await hang.wait()  # the relay has it; the process dies before its flag

    monkeypatch.setattr(notices, "send_mail", send_then_die)
    monkeypatch.setattr(notices, "exclusive", _short_lease)
    first = Notifier(runtime(state, broker))  # type: ignore[arg-type]
    await first.round()
    await _until(lambda: len(mails) == 1)
    await _kill(first)  # its lease is left to run out, as after SIGKILL

    second = Notifier(runtime(state, broker))  # type: ignore[arg-type]
    await second.round()
    await second.idle()  # the lease is still the dead one's: nothing sent
    assert len(mails) == 1
    await asyncio.sleep(0.6)
    await second.round()
    await second.idle()
    assert len(mails) == 2 and mails[0] == mails[1] and mails[0].endswith("@scaidrive.test>")
    assert broker.sent == [("conflict.detected", "k1", "conflict.detected:k1")]
    rec = await store.get("k1")
    assert rec["mailed"] and rec["published_detected"] and await store.notices_pending() == 0


async def test_a_failing_notice_is_shown_failed_at_the_limit(state, monkeypatch):
    store, broker = state.conflicts, Broker()
    await store.create(conflict("k2"))
    await store.notice_wanted("k2", time.time())

    async def refuse(_settings, _mail) -> None:
        raise RuntimeError("554 relay refused")

    monkeypatch.setattr(notices, "send_mail", refuse)
    monkeypatch.setattr(notices, "retry_in", lambda _n: 0.0)
    n = Notifier(runtime(state, broker))  # type: ignore[arg-type]
    for _ in range(3):
        await n.round()
        await n.idle()
    rec = await store.get("k2")
    assert rec["notify_failed"] == "RuntimeError: 554 relay refused" and not rec["mailed"]
    assert rec["published_detected"] and len(broker.sent) == 1  # the event went out once
    assert await store.notices_pending() == 0


async def _short_lease(store, cid, what, work):
    return await exclusive(store, cid, what, work, lease_s=0.5, renew_every_s=0.15)


async def _kill(n: Notifier) -> None:
    """Stop its work the way SIGKILL does: no `finally` gets to release the lease."""
    store = n.store

    async def keep(*_args) -> None:
        return None

    store.release = keep  # type: ignore[method-assign]
    tasks = list(n._busy.values())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    del store.release


async def _until(check, within_s: float = 5) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
