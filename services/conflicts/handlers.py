"""Conflict service: records detected conflicts, has them announced, and sends decisions to
transfer.

`ConflictDetected` (from the transfer worker): stored once (its id is derived from both
versions), its path held, and its notices scheduled in Redis; then the message is acked. The
notices (`conflict.detected`, then the admins' e-mail for `manual`, or the automatic policy's
decision) are sent by the `Notifier` (services/conflicts/notices.py) under a lease, so a
killed process loses none and spends no message's delivery attempts. `ConflictDecision`
(from the API): a RESOLVED `TransferJob` for the connector's transfer queue. The transfer
worker checks that neither side changed since detection before it applies the decision and
then publishes `conflict.resolved`; a stale one ends superseded (`conflict.superseded`), so
this service does no source or storage I/O. Redeliveries are safe: recording is idempotent,
and every notice is guarded by a once-flag. A dead-lettered detection is shown on its
conflict (services/conflicts/dead_letters.py).
"""
from __future__ import annotations

import asyncio
import logging
import time

from services.conflicts import dead_letters
from services.conflicts.decisions import apply, policy_winner, transfer_job
from services.conflicts.mail import render_email
from services.conflicts.notices import Notifier, notices_done
from shared.app.runtime import Runtime
from shared.contracts import ConflictDecision, ConflictDetected

log = logging.getLogger(__name__)
__all__ = ["Conflicts", "policy_winner", "render_email", "transfer_job"]


class Conflicts:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.store = rt.state.conflicts
        self.notifier = Notifier(rt)

    async def start(self) -> None:
        """The notices' loop, and the watch on dead-lettered detections."""
        self.rt.tasks.append(asyncio.create_task(self.notifier.run()))
        await dead_letters.watch(self.rt)

    async def on_message(self, msg) -> None:
        if isinstance(msg, ConflictDetected):
            await self.on_detected(msg)
        elif isinstance(msg, ConflictDecision):
            await self.on_decision(msg)
        else:
            log.warning("conflict service ignores %s", type(msg).__name__)

    async def on_detected(self, msg: ConflictDetected) -> None:
        if await self.rt.state.connector(msg.connector_id) is None:
            log.info("conflict %s dropped: connector %s was deleted", msg.conflict_id,
                     msg.connector_id)
            return
        if await self.store.create(msg):
            log.info("conflict %s on %s/%s recorded (policy %s)", msg.conflict_id,
                     msg.connector_id, msg.path, msg.policy)
        record = await self.store.get(msg.conflict_id)
        if record is None or record["notify_failed"] or notices_done(record):
            return  # the connector was deleted meanwhile; or nothing left to send
        await self.store.notice_wanted(msg.conflict_id, time.time())
        self.notifier.poke()

    async def on_decision(self, msg: ConflictDecision) -> None:
        record = await self.store.get(msg.conflict_id)
        if record is None or await self.rt.state.connector(record["connector_id"]) is None:
            log.info("decision on conflict %s dropped: the conflict or its connector is gone",
                     msg.conflict_id)
            return
        if record["state"] == "open":  # sent by someone other than the API: decide here
            _won, record = await self.store.resolve(msg.conflict_id, msg.winner, msg.resolved_by)
        if record is None or record["state"] != "resolved":
            log.info("decision on conflict %s dropped: it is %s", msg.conflict_id,
                     record and record["state"])
            return
        await apply(self.rt, record)
