"""What an admin reads by default: the API's answers as Rich tables (times relative, causes in
plain words). `-o json` bypasses all of this and prints the API's JSON as it always was."""
from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from rich import box
from rich.console import Console
from rich.table import Table

PIPE_WIDTH = 200  # not a terminal: wide enough that names and paths do not wrap


def console() -> Console:
    """Stdout; piped, without colour and wide (a name stays on one line for grep)."""
    tty = sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=False, width=None if tty else PIPE_WIDTH)


def ago(iso: str | None, now: datetime | None = None) -> str:
    """"5 min ago", "in 3 h" (next runs), "never" for no time."""
    if not iso:
        return "never"
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    span = abs(seconds)
    if span < 45:
        text = "just now" if seconds >= 0 else "now"
        return text
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if span >= size * 0.95:
            n = round(span / size)
            label = f"{n} {unit}{'s' if unit == 'day' and n != 1 else ''}"
            return f"{label} ago" if seconds > 0 else f"in {label}"
    return f"{round(span)} s ago"


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _table(title: str, columns: Iterable[str]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    for name in columns:
        table.add_column(name, overflow="fold")
    return table


def _show(table: Table, empty: str) -> None:
    out = console()
    out.print(table if table.row_count else empty)


def _field_table(title: str, rows: list[tuple[str, object]]) -> None:
    table = Table(title=title, box=box.SIMPLE, show_header=False, title_justify="left",
                  show_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, "-" if value in (None, "", []) else str(value))
    console().print(table)


# --- connectors ---------------------------------------------------------------------------

def _last_run(status: dict) -> str:
    p = status.get("progress") or {}
    if not status.get("run"):
        return "-"
    text = f"{p.get('files_transferred', 0)} / {p.get('files_errored', 0)}"
    return text


def connectors(items: list[dict]) -> None:
    table = _table("Connectors", ("ID", "NAME", "KIND", "STATE", "LAST SUCCESS",
                                  "LAST RUN: SENT / ERRORS", "FLAGS"))
    for c in items:
        s = c.get("status") or {}
        flags = list(s.get("flags") or [])
        waiting = s.get("awaiting_admin") or {}
        if waiting.get("conflicts"):
            flags.append(f"{waiting['conflicts']} conflict(s)")
        if waiting.get("deletes_held"):
            flags.append(f"{waiting['deletes_held']} deletion(s) held")
        table.add_row(c.get("id", ""), c.get("name", ""), c.get("kind", ""),
                      s.get("state", ""), ago(s.get("last_success_at")), _last_run(s),
                      ", ".join(flags) or "-")
    _show(table, "no connectors")


def connector(c: dict) -> None:
    s = c.get("status") or {}
    run = s.get("run") or {}
    p = s.get("progress") or {}
    waiting = s.get("awaiting_admin") or {}
    _field_table(f"Connector {c.get('name', '')}", [
        ("id", c.get("id")), ("kind", c.get("kind")),
        ("source", c.get("server") or c.get("site_url")),
        ("target", f"{c.get('target_share', '')}/{c.get('target_prefix') or ''}".rstrip("/")),
        ("sync mode", c.get("sync_mode")), ("schedule", c.get("schedule")),
        ("state", s.get("state")), ("flags", ", ".join(s.get("flags") or [])),
        ("last success", ago(s.get("last_success_at"))),
        ("next run", ago(s.get("next_due_at")) if s.get("next_due_at") else None),
        ("last error", s.get("last_error") or s.get("auth_error")),
        ("last run", f"{run.get('outcome') or run.get('phase')}, started "
                     f"{ago(run.get('started_at'))}" if run else None),
        ("files sent / moved / deleted / errored",
         "{files_transferred} / {files_moved} / {files_deleted} / {files_errored}".format_map(
             {k: p.get(k, 0) for k in ("files_transferred", "files_moved", "files_deleted",
                                       "files_errored")}) if run else None),
        ("bytes sent", human_bytes(p.get("bytes_transferred")) if run else None),
        ("errors today", s.get("errors_today")),
        ("waiting for an admin", f"{waiting.get('conflicts', 0)} conflict(s), "
                                 f"{waiting.get('deletes_held', 0)} deletion(s) held"),
        ("admin emails", ", ".join(c.get("admin_emails") or [])),
        ("conflict policy", c.get("conflict_policy")),
        ("max delete %", c.get("max_delete_percent")),
        ("bandwidth limit", c.get("bandwidth_limit") or "none"),
        ("max parallel transfers", c.get("max_parallel_transfers") or "no limit"),
        ("sync windows", _windows(c.get("sync_windows"))),
    ])


def _windows(w: dict | None) -> str:
    """`mon,tue 19:00-07:00; sat 00:00-24:00 (Europe/Berlin)`, or `any time`."""
    if not w:
        return "any time"
    spans = "; ".join(f"{','.join(x.get('days') or [])} {x.get('start')}-{x.get('end')}"
                      for x in w.get("windows") or [])
    return f"{spans} ({w.get('timezone', 'UTC')})"


def failures(items) -> None:
    table = _table("Failures (one row per path)", ("PATH", "CAUSE", "COUNT", "LAST SEEN"))
    for f in items:
        table.add_row(f.get("path", ""), f.get("plain") or f.get("cause", ""),
                      str(f.get("count", 1)), ago(f.get("last_seen") or f.get("at")))
    _show(table, "no failures")


def held_deletes(data: dict) -> None:
    table = _table(f"Deletions held: {data.get('count', 0)}", ("PATH", "DELETED ON"))
    for f in data.get("files") or []:
        table.add_row(f.get("path", ""), f.get("side", ""))
    _show(table, "no deletions are held")


# --- shares, conflicts, audit -------------------------------------------------------------

def shares(items: list[dict]) -> None:
    table = _table("Shares", ("NAME", "USED", "QUOTA", "CREATED"))
    for s in items:
        created = s.get("created_at")
        table.add_row(s.get("name", ""), human_bytes(s.get("usage_bytes", 0)),
                      human_bytes(s["quota_bytes"]) if s.get("quota_bytes") else "none",
                      ago(datetime.fromtimestamp(created, UTC).isoformat())
                      if isinstance(created, int | float) else ago(created))
    _show(table, "no shares")


def share(s: dict) -> None:
    shares([s])


def conflicts(items: list[dict]) -> None:
    table = _table("Conflicts", ("ID", "CONNECTOR", "PATH", "STATE", "DETECTED", "DECISION"))
    for c in items:
        decision = (f"{c['winner']} by {c.get('resolved_by') or '?'}"
                    if c.get("winner") else "-")
        table.add_row(c.get("id", ""), c.get("connector_name") or c.get("connector_id", ""),
                      c.get("path", ""), c.get("state", ""), ago(c.get("detected_at")), decision)
    _show(table, "no conflicts")


def conflict(c: dict) -> None:
    def version(side: str) -> str:
        v = c.get(side)
        if not isinstance(v, dict):
            return "-"
        size = human_bytes(v["size"]) if "size" in v else ""
        changed = v.get("mtime") or v.get("modified") or v.get("last_modified")
        return ", ".join(x for x in (size, f"changed {changed}" if changed else "") if x) or "-"

    _field_table(f"Conflict {c.get('id', '')}", [
        ("path", c.get("path")), ("connector", c.get("connector_name") or c.get("connector_id")),
        ("state", c.get("state")), ("detected", ago(c.get("detected_at"))),
        ("policy", c.get("policy")), ("source version", version("source")),
        ("scaidrive version", version("scaidrive")), ("winner", c.get("winner")),
        ("resolved by", c.get("resolved_by")),
        ("resolved", ago(c["resolved_at"]) if c.get("resolved_at") else None),
        ("applied", ago(c["applied_at"]) if c.get("applied_at") else None),
        ("reason", c.get("reason")),
        # `conflicts notify ID` sends it again
        *([("notification failed", c["notify_failed"])] if c.get("notify_failed") else []),
        # `conflicts reapply ID` applies it again
        *([("apply failed", c["apply_failed"])] if c.get("apply_failed") else []),
    ])


AUDIT_KEYS = ("at", "event", "connector_id", "connector_name", "kind", "actor")


def audit(items: list[dict]) -> None:
    table = _table("Audit log (newest first)", ("WHEN", "EVENT", "CONNECTOR", "BY", "DETAIL"))
    for r in items:
        detail = ", ".join(f"{k}={v}" for k, v in r.items() if k not in AUDIT_KEYS)
        table.add_row(ago(r.get("at")), r.get("event", ""),
                      r.get("connector_name") or r.get("connector_id") or "-",
                      r.get("actor") or "-", detail or "-")
    _show(table, "nothing in the audit log")

