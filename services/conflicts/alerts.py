"""Alert mails: a connector's admins are told, once per incident, when

  auth_failed        the source refused the connector's credentials (for SharePoint also: the
                     application has no grant for the site), so its runs are stopped
  stale              no successful sync for several schedule periods (the scheduler's flag)
  deletes_held       deletions wait for an admin (more than `max_delete_percent` of a side)
  quota              the target share is at 90% of its quota or more (services/scheduler/
                     usage_recount.py decides the crossing and publishes share.quota_warning)
  credential_expiry  a SharePoint client secret (`secret_expires_at`) or certificate (its
                     notAfter) expires within 30 days, or has expired

Two ways in, one record per (connector, condition) (shared/store/alert_records.py):
- events: the durable quorum queue `{ns}.alerts`, bound to the events exchange for
  connector.auth_failed, connector.deletes_held and share.quota_warning: the connector is
  checked as soon as one comes;
- a sweep, every SCAIDRIVE_ALERT_SWEEP_S (60 s), checks every connector: it finds what has no
  event (stale, expiring credentials) or whose event came before this queue existed, and it
  clears the record of each condition that no longer holds (new credentials, a successful run,
  held deletions approved or rejected, usage under 85%, a renewed secret), so the condition
  coming back is a new incident and mails again.
A condition's mail goes out while its record says it was not sent; a failed send raises (the
event is retried by the broker, the sweep tries again next time). Mails are sent by
`services.conflicts.mail.send_mail`. Recipients: the connector's
`admin_emails`, else SCAIDRIVE_ADMIN_EMAILS; with nobody to tell it is logged once.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage

from aio_pika.abc import AbstractQueue

from services.conflicts.mail import new_mail, send_mail
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.config.secrets import SecretBox
from shared.config.settings import ConflictSettings
from shared.contracts import ConnectorAuthFailed, Contract, DeletesHeld, ShareQuotaWarning
from shared.messaging.broker import Broker
from shared.store.daily_counters import STALE_PERIODS

log = logging.getLogger(__name__)
QUEUE = "alerts"
CLAIM_SLACK_S = 30  # a claim outlives the SMTP timeout, so a slow send is never done twice
EVENTS = ("connector.auth_failed", "connector.deletes_held", "share.quota_warning")


@dataclass(frozen=True)
class Condition:
    """A condition that holds now, with what its mail says."""
    name: str
    marker: str = ""  # tells incidents apart (see alert_records); "" where nothing does
    facts: dict = field(default_factory=dict)


def marker_of(ts: float) -> str:
    return f"{ts:.3f}"


# --- pure parts: expiry, mail text ----------------------------------------------------------

def _utc(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def certificate_expiry(pem: str) -> datetime | None:
    """notAfter of the certificate in a PEM (None if there is none to read)."""
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc
    except ValueError:
        return None


def _when(ts: str | float | None) -> str:
    if not ts:
        return "never"
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M UTC")


def _auth_failed(c: Connector, facts: dict) -> tuple[str, str]:
    what = "credentials" if c.kind == "smb" else "application's credentials or access"
    return (f"syncing stopped: the source refused the {what}",
            f"The source refused the connector's {what}:\n  {facts.get('error') or 'refused'}\n"
            f"\nNothing is synced until this is fixed; work already queued waits.\n\n"
            f"What to do: correct the password, client secret or certificate (or, for "
            f"SharePoint, the application's access to the site) and save the connector: "
            f"PATCH /api/v1/connectors/{c.id} or the console. Syncing resumes by itself.\n")


def _stale(c: Connector, facts: dict) -> tuple[str, str]:
    return (f"no successful sync for {STALE_PERIODS} schedule periods",
            f"The connector has not finished a sync successfully for {STALE_PERIODS} schedule "
            f"periods (schedule: {c.schedule}; last success: "
            f"{_when(facts.get('last_success_at'))}).\n"
            f"Last error: {facts.get('last_error') or 'none recorded'}\n\n"
            f"What to do: look at the connector's last error and its failures "
            f"(GET /api/v1/connectors/{c.id}/failures): a source that cannot be reached, "
            f"files that keep failing, or a connector left paused. The warning ends with the "
            f"next successful sync.\n")


def _deletes_held(c: Connector, facts: dict) -> tuple[str, str]:
    n = facts.get("count", 0)
    return (f"{n} deletion(s) held for your approval",
            f"A sync would have deleted {n} file(s), more than the connector's limit of "
            f"{c.max_delete_percent}% of the files on one side. None of them were deleted.\n\n"
            f"What to do: review them (GET /api/v1/connectors/{c.id}/held-deletes), then "
            f"approve (POST /api/v1/connectors/{c.id}/held-deletes/approve: the next sync "
            f"deletes them) or reject (POST .../held-deletes/reject: the next sync restores "
            f"them).\n")


def _quota(c: Connector, facts: dict) -> tuple[str, str]:
    share, used, quota = c.target_share, facts.get("usage", 0), facts.get("quota") or 1
    return (f"share {share} is {used * 100 / quota:.0f}% full",
            f"The ScaiDrive share {share!r} that this connector syncs into uses {used:,} of its "
            f"{quota:,} bytes ({used * 100 / quota:.1f}%). Files that do not fit fail to sync "
            f"(quota_exceeded) until there is room.\n\n"
            f"What to do: raise the share's quota (PATCH /api/v1/shares/{share} "
            f'{{"quota_bytes": ...}}) or free space in it.\n')


def _credential_expiry(c: Connector, facts: dict) -> tuple[str, str]:
    what, at = facts.get("what", "credential"), facts["expires_at"]
    days = (at - datetime.now(UTC)).total_seconds() / 86400
    when = f"expired on {at:%Y-%m-%d}" if days < 0 else \
        f"expires on {at:%Y-%m-%d %H:%M UTC} (in {max(0, int(days))} day(s))"
    return (f"the application's {what} {'expired' if days < 0 else 'expires soon'}",
            f"The {what} this connector signs in to Microsoft 365 with {when}. After that "
            f"every sync fails until it is replaced.\n\n"
            f"What to do: make a new {what} for the application in Entra ID (App "
            f"registrations > Certificates & secrets) and save it on the connector "
            f"(PATCH /api/v1/connectors/{c.id}"
            + (', with its "secret_expires_at"' if what == "client secret" else "")
            + ").\n")


TEXTS = {"auth_failed": _auth_failed, "stale": _stale, "deletes_held": _deletes_held,
         "quota": _quota, "credential_expiry": _credential_expiry}


def render_alert(c: Connector, cond: Condition, recipients: list[str],
                 settings: ConflictSettings) -> EmailMessage:
    """The admins' mail: which connector, what happened, what to do."""
    headline, body = TEXTS[cond.name](c, cond.facts)
    link = f"{settings.console_url.rstrip('/')}/connectors/{c.id}"
    mail = new_mail(settings, recipients, f"[ScaiDrive] {c.name}: {headline}",
                    Alert=cond.name, Connector_Id=c.id)
    mail.set_content(f"Connector {c.name!r} ({c.kind}, id {c.id}): {headline}.\n\n{body}\n"
                     f"The connector in the console: {link}\n")
    return mail


# --- the queue ------------------------------------------------------------------------------

async def declare_queue(broker: Broker) -> AbstractQueue:
    """`{ns}.alerts`: a durable quorum queue (delivery limit, dead letters) bound to the events
    exchange for the alert events, declared on the broker's topology channel (restored with
    its bindings after a reconnect)."""
    if broker.channel is None:
        raise RuntimeError("the broker is not connected: connect() first")
    queue = await broker.channel.declare_queue(broker.name(QUEUE), durable=True, arguments={
        "x-queue-type": "quorum",
        "x-delivery-limit": broker.delivery_limit,
        "x-dead-letter-exchange": broker.name("dead"),
    })
    for key in EVENTS:
        await queue.bind(broker.exchanges["events"], routing_key=key)
    broker.queues[QUEUE] = queue
    return queue


async def start(rt: Runtime) -> Alerts:
    """Consume the alert events and sweep every connector now and then."""
    alerts = Alerts(rt)
    queue = await declare_queue(rt.broker)
    await rt.broker.consume(queue, lambda msg, _raw: alerts.on_event(msg), prefetch=4)
    rt.tasks.append(asyncio.create_task(alerts.sweep_forever()))
    return alerts


# --- deciding and mailing -------------------------------------------------------------------

class Alerts:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.settings: ConflictSettings = rt.settings  # type: ignore[assignment]
        self.records = rt.state.alerts
        self.usage = rt.state.usage
        self.claim_s = self.settings.smtp_timeout_s + CLAIM_SLACK_S
        self._expiries: dict[str, datetime | None] = {}  # certificate ciphertext -> notAfter

    async def on_event(self, msg: Contract) -> None:
        if isinstance(msg, ConnectorAuthFailed):
            await self._check_id(msg.connector_id, {"auth_failed": marker_of(msg.at.timestamp())})
        elif isinstance(msg, DeletesHeld):  # one per new held set (both sides: one run)
            await self._check_id(msg.connector_id, {"deletes_held": msg.run_id})
        elif isinstance(msg, ShareQuotaWarning):
            for c in await self.rt.state.connectors():
                if c.target_share == msg.share:
                    await self.check(c, {"quota": marker_of(msg.at.timestamp())})
        else:
            log.warning("alerts ignore %s", type(msg).__name__)

    async def _check_id(self, cid: str, markers: dict[str, str] | None = None) -> None:
        c = await self.rt.state.connector(cid)
        if c is not None:  # deleted since: nobody to tell about it
            await self.check(c, markers)

    async def sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # Redis may be back next time
                log.exception("alert sweep failed")
            await asyncio.sleep(self.settings.alert_sweep_s)

    async def sweep(self) -> None:
        """Check every connector; forget the records of deleted ones."""
        connectors = await self.rt.state.connectors()
        for c in connectors:
            try:
                await self.check(c)
            except Exception:  # one connector's failed mail does not keep the others' back
                log.exception("alert check failed", extra={"connector_id": c.id})
        for cid in await self.records.alerted() - {c.id for c in connectors}:
            if await self.rt.state.connector(cid) is None:
                await self.records.forget(cid)

    async def check(self, c: Connector, markers: dict[str, str] | None = None) -> list[str]:
        """Clear what no longer holds, mail what holds and was not mailed; returns the
        conditions mailed now."""
        holding = {cond.name: cond for cond in await self.conditions(c)}
        for name in (await self.records.current(c.id)).keys() - holding.keys():
            await self.records.clear(c.id, name)
            log.info("alert %s cleared", name, extra={"connector_id": c.id})
        mailed = []
        for cond in holding.values():
            if await self.alert(c, cond, (markers or {}).get(cond.name) or cond.marker):
                mailed.append(cond.name)
        return mailed

    async def conditions(self, c: Connector) -> list[Condition]:
        """The alert conditions that hold for `c` now, read from the store."""
        status = await self.rt.state.status(c.id)
        found = []
        if status.get("auth_failed") == "1":
            found.append(Condition("auth_failed", facts={"error": status.get("auth_error")}))
        if status.get("stale") == "1":
            found.append(Condition("stale", facts={
                "last_success_at": status.get("last_success_at"),
                "last_error": status.get("last_error")}))
        held, = await self.rt.state.delete_holds.counts([c.id])
        if held:
            found.append(Condition("deletes_held", facts={"count": held}))
        found += [x for x in (await self._quota(c), self._expiry(c)) if x is not None]
        return found

    async def _quota(self, c: Connector) -> Condition | None:
        crossed = await self.usage.quota_warned(c.target_share)
        if crossed is None:
            return None
        share = await self.rt.state.share(c.target_share) or {}
        return Condition("quota", marker_of(crossed), {"usage": share.get("usage_bytes", 0),
                                                       "quota": share.get("quota_bytes")})

    def _expiry(self, c: Connector) -> Condition | None:
        what, at = self.credential_expiry(c)
        if at is None or at.timestamp() - time.time() > self.settings.credential_warn_days * 86400:
            return None
        return Condition("credential_expiry", marker_of(at.timestamp()),
                         {"what": what, "expires_at": at})

    def credential_expiry(self, c: Connector) -> tuple[str, datetime | None]:
        """What the SharePoint connector signs in with, and when it expires (None: unknown)."""
        if c.kind != "sharepoint":
            return "credential", None
        if c.credential == "certificate" and c.certificate_enc:
            return "certificate", self._certificate_expiry(c.certificate_enc, self.rt.box)
        at = c.secret_expires_at
        return "client secret", _utc(at) if at is not None else None

    def _certificate_expiry(self, sealed: str, box: SecretBox) -> datetime | None:
        if sealed not in self._expiries:
            self._expiries[sealed] = certificate_expiry(box.open(sealed))
        return self._expiries[sealed]

    async def alert(self, c: Connector, cond: Condition, marker: str) -> bool:
        """Mail the condition unless this incident was mailed; True if it was now. The claim
        keeps two copies (a sweep and an event, two processes) from both sending it."""
        record = await self.records.open(c.id, cond.name, marker)
        if record.mailed:
            return False
        token = await self.records.claim(c.id, cond.name, self.claim_s)
        if token is None:
            return False  # another copy is sending it; if that fails, the next sweep retries
        try:
            record = await self.records.open(c.id, cond.name, marker)
            if record.mailed:
                return False
            await self._send(c, cond)
            await self.records.mark_mailed(c.id, record)
            return True
        finally:
            await self.records.release(c.id, cond.name, token)

    async def _send(self, c: Connector, cond: Condition) -> None:
        recipients = list(c.admin_emails) or self.settings.default_admin_emails()
        if not recipients:
            log.warning("alert %s: no admin_emails on the connector, no SCAIDRIVE_ADMIN_EMAILS: "
                        "nobody told", cond.name, extra={"connector_id": c.id})
            return
        await send_mail(self.settings, render_alert(c, cond, recipients, self.settings))
        log.info("alert %s mailed to %d admin(s)", cond.name, len(recipients),
                 extra={"connector_id": c.id})
