"""The admins' e-mail about a conflict: what it says (`render_email`) and how it is sent
(`send_mail`, aiosmtplib). Each conflict's e-mail has one Message-ID, kept in Redis before
the first send: a send repeated after a crash carries the same one (`message_id`)."""
from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from services.conflicts.decisions import utc
from shared.config.settings import ConflictSettings
from shared.contracts import ConflictDetected, SideVersion


def _side(label: str, v: SideVersion) -> str:
    mtime = utc(v.mtime).isoformat() if v.mtime else "unknown"
    return (f"{label}:\n  size:     {v.size} bytes\n  modified: {mtime}\n"
            f"  editor:   {v.editor or 'unknown'}\n  etag:     {v.etag or 'unknown'}\n")


def new_mail(settings: ConflictSettings, recipients: list[str], subject: str,
             **headers: str) -> EmailMessage:
    """A mail to the admins, from the configured sender; `headers`: X-ScaiDrive-* names
    without the prefix (`Conflict_Id="..."` -> X-ScaiDrive-Conflict-Id)."""
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = settings.smtp_from
    mail["To"] = ", ".join(recipients)
    for name, value in headers.items():
        mail["X-ScaiDrive-" + name.replace("_", "-")] = value
    return mail


def render_email(msg: ConflictDetected, recipients: list[str],
                 settings: ConflictSettings) -> EmailMessage:
    """The admins' notice: both versions side by side, where to decide, and the API call."""
    link = f"{settings.console_url.rstrip('/')}/connectors/{msg.connector_id}"
    mail = new_mail(settings, recipients,
                    f"[ScaiDrive] Sync conflict in {msg.connector_name}: {msg.path}",
                    Conflict_Id=msg.conflict_id)
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


def message_id(settings: ConflictSettings) -> str:
    """A new Message-ID, in the sender's domain (make_msgid's default asks the DNS)."""
    return make_msgid("scaidrive", domain=settings.smtp_from.rpartition("@")[2] or "scaidrive")


async def send_mail(settings: ConflictSettings, mail: EmailMessage) -> None:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    await aiosmtplib.send(
        mail, hostname=settings.smtp_host, port=settings.smtp_port,
        username=settings.smtp_username or None, password=password,
        use_tls=settings.smtp_tls == "tls", start_tls=settings.smtp_tls == "starttls",
        timeout=settings.smtp_timeout_s)
