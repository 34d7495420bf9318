"""A conflict's notices, sent from Redis rather than from the message that reported it.

`ConflictDetected` is recorded and acked at once; what it asks for is scheduled in Redis
(`{ns}:conflicts:notify`, shared/store/conflict_records.py): the `conflict.detected` event,
then the admins' e-mail (manual review) or the policy's decision (automatic). The `Notifier`
of every conflict-service process sends what is due, each conflict under a lease a heartbeat
renews (services/conflicts/lease.py), so a killed process spends no delivery attempt of any
message: its lease runs out within 10 s and the conflict's notices are taken over.

Each notice is sent once: the event carries `conflict.detected:<id>` as its AMQP message id,
the e-mail a Message-ID kept in Redis before the first send; each sets its flag on success.
A process killed after a send and before its flag (one Redis write later) sends it again
with the same id, so the copy is recognisable. A notice failing `delivery_limit` times in a
row is given up on: the conflict shows `notify_failed` (API, console) until an admin asks
for it again (`POST /conflicts/{id}/notify`).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from services.conflicts.decisions import apply, detection, event_id, policy_winner
from services.conflicts.lease import LeaseLost, exclusive
from services.conflicts.mail import message_id, render_email, send_mail
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.config.settings import ConflictSettings
from shared.contracts import ConflictDetected
from shared.messaging import outages

log = logging.getLogger(__name__)
LEASE = "notice"  # the lease's name (shared/store/conflict_records.py `_LEASES`)
POLL_S = 1.0  # how often due notices are looked for, besides being told of new ones
IN_FLIGHT = 8  # conflicts whose notices one process sends at once
BATCH = 64


def notices_done(record: dict[str, Any]) -> bool:
    """Nothing left to send for this conflict."""
    if not record["published_detected"]:
        return False
    if record["policy"] == "manual":
        return record["mailed"]
    return record["state"] != "open"


def retry_in(failures: int) -> float:
    return float(min(2 ** failures, 30))


class Notifier:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.settings: ConflictSettings = rt.settings  # type: ignore[assignment]
        self.store = rt.state.conflicts
        self._wake = asyncio.Event()
        self._busy: dict[str, asyncio.Task[None]] = {}  # conflict id -> its task (strong refs)

    def poke(self) -> None:
        """Look for due notices now (one was just scheduled)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception as exc:  # Redis unreachable: the next round tries again
                log.warning("due conflict notices not read: %s: %s", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            self._wake.clear()

    async def round(self) -> None:
        """Start sending the due notices of conflicts this process is not busy with."""
        for cid in await self.store.notices_due(time.time(), BATCH):
            if len(self._busy) >= IN_FLIGHT:
                return
            if cid not in self._busy:
                self._busy[cid] = asyncio.create_task(self.send(cid))
                self._busy[cid].add_done_callback(self._done(cid))

    def _done(self, cid: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_task: asyncio.Task[None]) -> None:
            self._busy.pop(cid, None)
        return forget

    async def idle(self) -> None:
        """Until the notices in hand are sent (tests)."""
        while self._busy:
            await asyncio.gather(*self._busy.values(), return_exceptions=True)

    async def send(self, cid: str) -> None:
        """The conflict's due notices, under its lease; a failure is counted and retried."""
        try:
            if await exclusive(self.store, cid, LEASE, lambda: self._send(cid)):
                await self.store.notice_sent(cid)
        except LeaseLost as exc:
            log.warning("%s: left to the process that took it over", exc)
        except Exception as exc:
            await self._failed(cid, exc)

    async def _failed(self, cid: str, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if outages.is_outage(exc):  # nobody's fault: tried again without counting
            log.warning("notices of conflict %s wait for a dependency: %s", cid, error)
            with contextlib.suppress(Exception):
                await self.store.notice_retry(cid, time.time() + outages.WAIT_S)
            return
        limit = self.rt.settings.delivery_limit
        n = await self.store.notice_failed(cid, error, limit)
        if n >= limit:
            log.error("notices of conflict %s failed %d times, given up until an admin asks "
                      "again: %s", cid, n, error)
        elif n > 0:
            log.warning("notices of conflict %s failed (%d of %d), retried: %s", cid, n, limit,
                        error)
            await self.store.notice_retry(cid, time.time() + retry_in(n))

    async def _send(self, cid: str) -> None:
        record = await self.store.get(cid)
        if record is None or notices_done(record):
            return
        c = await self.rt.state.connector(record["connector_id"])
        if c is None:
            log.info("notices of conflict %s dropped: its connector was deleted", cid)
            return
        msg = detection(record)
        if not record["published_detected"]:
            await self.rt.broker.publish("events", "conflict.detected", msg,
                                         message_id=event_id("conflict.detected", cid))
            await self.store.set_flag(cid, "published_detected")
        winner = policy_winner(msg.policy, msg.source, msg.scaidrive)
        if winner is None:
            await self._mail(record, msg, c)
            return
        _won, now = await self.store.resolve(cid, winner, f"policy:{msg.policy}", automatic=True)
        if now and now["state"] == "resolved":  # by this policy now, or on a try before
            await apply(self.rt, now)

    async def _mail(self, record: dict[str, Any], msg: ConflictDetected, c: Connector) -> None:
        if record["mailed"]:
            return
        recipients = c.admin_emails or self.settings.default_admin_emails()
        if not recipients:
            log.warning("conflict %s on connector %s: no admin_emails to tell", msg.conflict_id,
                        msg.connector_id)
            return
        kept = await self.store.mail_message_id(msg.conflict_id, message_id(self.settings))
        if record["mail_message_id"]:
            log.warning("conflict %s: its e-mail is sent again with the same Message-ID %s "
                        "(a try before may have reached the relay)", msg.conflict_id, kept)
        mail = render_email(msg, recipients, self.settings)
        mail["Message-ID"] = kept
        await send_mail(self.settings, mail)
        await self.store.set_flag(msg.conflict_id, "mailed")
        log.info("conflict %s mailed to %d admin(s)", msg.conflict_id, len(recipients))
