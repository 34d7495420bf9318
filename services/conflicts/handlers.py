"""Conflict service: records detected conflicts, tells admins, and sends decisions to transfer.

`ConflictDetected` (from the transfer worker): stored once (its id is derived from both
versions), its path held, published as `conflict.detected` once; a `manual` conflict is mailed
to the connector's admins once, an automatic policy resolves it at once. `ConflictDecision`
(from the API, or a policy here): a RESOLVED `TransferJob` for the connector's transfer queue.
The transfer worker checks that neither side changed since detection before it applies the
decision and then publishes `conflict.resolved`; a stale one ends superseded
(`conflict.superseded`), so this service does no source or storage I/O. Redeliveries are safe:
every side effect is guarded by a flag set after it succeeded, and a short claim so two copies
handled at once do not both do it.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import overload

import aiosmtplib

from shared.app.runtime import Runtime
from shared.config.settings import ConflictSettings
from shared.contracts import (
    ChangeKind,
    ConflictDecision,
    ConflictDetected,
    FileVersion,
    SideVersion,
    TransferJob,
    Winner,
)
from shared.store.conflict_records import ConflictStore

log = logging.getLogger(__name__)
CLAIM_SLACK_S = 30  # a claim outlives the SMTP timeout, so a slow send is never done twice
BUSY_WAIT_S = 5  # how long a duplicate waits for the other copy's side effect before retrying


class Busy(Exception):
    """Another delivery is doing this side effect right now: retry later (broker backoff)."""


# --- pure parts -----------------------------------------------------------------------------

@overload
def _utc(when: datetime) -> datetime: ...


@overload
def _utc(when: datetime | None) -> datetime | None: ...


def _utc(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


def policy_winner(policy: str, source: SideVersion, scaidrive: SideVersion) -> Winner | None:
    """The winner an automatic policy picks; None for `manual` (an admin decides).
    `newer`: the later mtime wins; a tie, or no mtime on the ScaiDrive side, keeps the source."""
    if policy == "source_wins":
        return "source"
    if policy == "scaidrive_wins":
        return "scaidrive"
    if policy == "newer":
        src, dst = _utc(source.mtime), _utc(scaidrive.mtime)
        if dst is not None and (src is None or dst > src):
            return "scaidrive"
        return "source"
    return None


def _side(label: str, v: SideVersion) -> str:
    mtime = _utc(v.mtime).isoformat() if v.mtime else "unknown"
    return (f"{label}:\n  size:     {v.size} bytes\n  modified: {mtime}\n"
            f"  editor:   {v.editor or 'unknown'}\n  etag:     {v.etag or 'unknown'}\n")


def render_email(msg: ConflictDetected, recipients: list[str],
                 settings: ConflictSettings) -> EmailMessage:
    """The admins' notice: both versions side by side, where to decide, and the API call."""
    link = f"{settings.console_url.rstrip('/')}/connectors/{msg.connector_id}"
    mail = EmailMessage()
    mail["Subject"] = f"[ScaiDrive] Sync conflict in {msg.connector_name}: {msg.path}"
    mail["From"] = settings.smtp_from
    mail["To"] = ", ".join(recipients)
    mail["X-ScaiDrive-Conflict-Id"] = msg.conflict_id
    mail.set_content(
        f"The file {msg.path!r} of connector {msg.connector_name!r} changed both at the source "
        f"and in ScaiDrive since the last sync, to different contents.\n"
        f"Neither version was overwritten; the file is not synced until you decide.\n\n"
        + _side("Source version", msg.source) + "\n" + _side("ScaiDrive version", msg.scaidrive)
        + f"\nDecide in the console: {link}\n\n"
        f"Or with the admin API (winner: source, scaidrive or keep_both):\n"
        f"  POST /api/v1/conflicts/{msg.conflict_id}/resolve\n"
        f'  {{"winner": "source", "resolved_by": "you@example.com"}}\n\n'
        f"Conflict id: {msg.conflict_id}\nDetected at: {msg.detected_at.isoformat()}\n")
    return mail


def transfer_job(record: dict) -> TransferJob:
    """The job that applies a resolved conflict's decision."""
    return TransferJob(
        kind=ChangeKind.RESOLVED, connector_id=record["connector_id"],
        run_id=f"conflict-{record['id']}", job_id=record["id"], path=record["path"],
        version=FileVersion.model_validate(record["source_version"]),
        target_etag=record["scaidrive"].get("etag"), conflict_id=record["id"],
        winner=record["winner"])


# --- once-only side effects -----------------------------------------------------------------

async def once(store: ConflictStore, conflict_id: str, flag: str, ttl_s: float,
               action: Callable[[], Awaitable[None]]) -> bool:
    """Run `action` unless `flag` is set, then set it; True if it ran. A failing action
    leaves the flag unset and raises (the broker retries with backoff, then dead-letters)."""
    token = await _claim(store, conflict_id, flag, ttl_s)
    if token is None:
        return False
    try:
        if await store.flagged(conflict_id, flag):  # finished while we were claiming
            return False
        await action()
        await store.set_flag(conflict_id, flag)
        return True
    finally:
        await store.release(conflict_id, flag, token)


async def _claim(store: ConflictStore, conflict_id: str, flag: str, ttl_s: float) -> str | None:
    """The claim on `flag`'s side effect; None once it is done. A copy of the message handled
    at the same moment waits a little for the other to finish, then retries via the broker."""
    deadline = asyncio.get_running_loop().time() + BUSY_WAIT_S
    while not await store.flagged(conflict_id, flag):
        token = await store.claim(conflict_id, flag, ttl_s)
        if token is not None:
            return token
        if asyncio.get_running_loop().time() > deadline:
            raise Busy(f"{flag} of conflict {conflict_id} is in progress elsewhere")
        await asyncio.sleep(0.2)
    return None


async def send_mail(settings: ConflictSettings, mail: EmailMessage) -> None:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    await aiosmtplib.send(
        mail, hostname=settings.smtp_host, port=settings.smtp_port,
        username=settings.smtp_username or None, password=password,
        use_tls=settings.smtp_tls == "tls", start_tls=settings.smtp_tls == "starttls",
        timeout=settings.smtp_timeout_s)


# --- handlers -------------------------------------------------------------------------------

class Conflicts:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.settings: ConflictSettings = rt.settings  # type: ignore[assignment]
        self.store = rt.state.conflicts
        self.claim_s = self.settings.smtp_timeout_s + CLAIM_SLACK_S

    async def on_message(self, msg) -> None:
        if isinstance(msg, ConflictDetected):
            await self.on_detected(msg)
        elif isinstance(msg, ConflictDecision):
            await self.on_decision(msg)
        else:
            log.warning("conflict service ignores %s", type(msg).__name__)

    async def on_detected(self, msg: ConflictDetected) -> None:
        c = await self.rt.state.connector(msg.connector_id)
        if c is None:
            log.info("conflict %s dropped: connector %s was deleted", msg.conflict_id,
                     msg.connector_id)
            return
        if await self.store.create(msg):
            log.info("conflict %s on %s/%s recorded (policy %s)", msg.conflict_id,
                     msg.connector_id, msg.path, msg.policy)
        record = await self.store.get(msg.conflict_id)
        if record is None:  # the connector was deleted meanwhile
            return
        await once(self.store, msg.conflict_id, "published_detected", self.claim_s,
                   lambda: self.rt.broker.publish("events", "conflict.detected", msg))
        winner = policy_winner(msg.policy, msg.source, msg.scaidrive)
        if winner is None:
            await self._mail_admins(msg, c.admin_emails or self.rt.settings.default_admin_emails())
            return
        _won, record = await self.store.resolve(msg.conflict_id, winner, f"policy:{msg.policy}",
                                                automatic=True)
        if record and record["state"] == "resolved":  # by this policy now, or on a delivery before
            await self.apply(record)

    async def _mail_admins(self, msg: ConflictDetected, recipients: list[str]) -> None:
        if not recipients:
            log.warning("conflict %s on connector %s: no admin_emails to tell", msg.conflict_id,
                        msg.connector_id)
            return
        mail = render_email(msg, recipients, self.settings)
        if await once(self.store, msg.conflict_id, "mailed", self.claim_s,
                      lambda: send_mail(self.settings, mail)):
            log.info("conflict %s mailed to %d admin(s)", msg.conflict_id, len(recipients))

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
        await self.apply(record)

    async def apply(self, record: dict) -> None:
        """Send the decision to the connector's transfer queue (the record's winner counts,
        not the message's: the first resolve won). The transfer worker checks that it is not
        stale, then applies it and announces `conflict.resolved`, or supersedes it."""
        cid = record["connector_id"]
        await self.rt.broker.transfer_queue(cid)  # declared, so the mandatory publish routes
        await self.rt.broker.publish("transfer", cid, transfer_job(record))
