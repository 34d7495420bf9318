"""Admin API routes under /api/v1 for connectors: create, read, update, delete, run now,
pause, resume, and their per-file failures."""
from __future__ import annotations

import bisect
import time
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import ValidationError

from services.api.routes.audit import record
from services.api.routes.identities import check_mapping
from services.api.sharepoint_check import resolve_library
from services.api.smb_check import as_json, check_smb, smb_checks
from shared.app.runtime import Runtime
from shared.config.connector_model import (
    SHAREPOINT_FIELDS,
    SMB_FIELDS,
    THROTTLE_FIELDS,
    Connector,
    ConnectorCreate,
    ConnectorUpdate,
    IdentityMapping,
)
from shared.config.sync_windows import in_window, next_open
from shared.contracts import RunCounts, RunRequested
from shared.errors import PLAIN, plain
from shared.store.daily_counters import errors_today, flags

router = APIRouter(prefix="/api/v1")
# Secrets arrive in these fields and are stored only encrypted (`*_enc`).
SECRET_INPUTS = {"password", "client_secret", "certificate", "certificate_password"}


def rt_of(request: Request) -> Runtime:
    return request.app.state.rt


def iso_time(ts: str | None) -> str | None:
    return datetime.fromtimestamp(float(ts), UTC).isoformat() if ts else None


# --- connectors ----------------------------------------------------------------------------

async def connector_or_404(rt: Runtime, cid: str) -> Connector:
    c = await rt.state.connector(cid)
    if c is None:
        raise HTTPException(404, f"no connector {cid!r}")
    return c


async def _view(rt: Runtime, c: Connector) -> dict:
    return (await _views(rt, [c]))[0]


async def _views(rt: Runtime, connectors: list[Connector]) -> list[dict]:
    cids = [c.id for c in connectors]
    snapshots = await rt.state.snapshots(cids)
    waiting = zip(await rt.state.conflicts.held_counts(cids),
                  await rt.state.delete_holds.counts(cids), strict=True)
    views = [_render(c, status, run)
             for c, (status, run, _lease) in zip(connectors, snapshots, strict=True)]
    errors = await errors_today(rt.state, cids)
    for view, (status, _run, _lease), (n_conflicts, n_deletes), n_errors in zip(
            views, snapshots, waiting, errors, strict=True):
        # What waits for an admin (conflicts open or not yet applied, held deletions).
        view["status"]["awaiting_admin"] = {"conflicts": n_conflicts, "deletes_held": n_deletes}
        view["status"]["errors_today"] = n_errors
        view["status"]["flags"] = flags(status)  # stale, suspicious_empty
    return views


def _render(c: Connector, status: dict, run: dict) -> dict:
    running = bool(run) and run.get("phase") != "finished"
    if status.get("auth_failed") == "1":
        state = "auth_failed"  # runs stopped until the credentials are updated
    elif status.get("paused") == "1":
        state = "paused"
    elif running:
        state = "running"
    elif status.get("last_outcome") == "failed":
        state = "error"
    else:
        state = "idle"
    progress = {k: int(run.get(k, 0)) for k in RunCounts.model_fields} | live_progress(run)
    return c.public() | {"status": {
        "state": state,
        "progress": progress,
        "run": {"run_id": run.get("run_id"), "phase": run.get("phase"),
                "reason": run.get("reason"), "jobs_total": int(run.get("jobs_total", -1)),
                "jobs_done": int(run.get("jobs_done", 0)),
                "started_at": iso_time(run.get("started_at")),
                "finished_at": iso_time(run.get("finished_at")),
                "outcome": run.get("outcome") or None, "error": run.get("error") or None,
                "error_plain": explain(run.get("error")),
                "deletes_withheld": int(run.get("deletes_withheld", 0)),
                "deletes_held": int(run.get("deletes_held", 0)),
                "owners_degraded": int(run.get("owners_degraded", 0))} if run else None,
        "last_success_at": iso_time(status.get("last_success_at")),
        "last_duration_s": (float(status["last_duration_s"])
                            if status.get("last_duration_s") else None),
        "last_error": status.get("last_error") or None,
        "last_error_plain": explain(status.get("last_error")),
        "auth_error": status.get("auth_error") or None,
        "auth_error_plain": plain("auth_failed") if status.get("auth_error") else None,
        "next_due_at": iso_time(status.get("next_due")),
    }}


def check_someone_is_told(rt: Runtime, c: Connector) -> None:
    """A two-way connector whose conflicts wait for an admin must have someone to tell: its own
    admin_emails or SCAIDRIVE_ADMIN_EMAILS. Else 422 at admin_emails."""
    if c.sync_mode == "two_way" and c.conflict_policy == "manual" and not c.admin_emails \
            and not rt.settings.default_admin_emails():
        raise HTTPException(422, [{"loc": ["body", "admin_emails"], "type": "value_error",
                                   "msg": "a two-way connector with manual review needs someone "
                                          "to tell about conflicts: give admin_emails (or set "
                                          "SCAIDRIVE_ADMIN_EMAILS for every connector)"}])


def explain(error: str | None) -> str | None:
    """A run's error (`cause: the server's words`) in plain words, or None if not known."""
    cause = (error or "").removeprefix("scan failed: ").split(":", 1)[0].strip()
    return PLAIN.get(cause) if error else None


def live_progress(run: dict, now: float | None = None) -> dict:
    """How far a run is, while it runs: files and bytes listed so far (they grow during the
    listing), then the totals the scan published, the share done, the average throughput since
    the run started and the time left at that pace (None where not known yet)."""
    listed, total = int(run.get("files_listed", 0)), int(run.get("jobs_total", -1))
    done, size = int(run.get("jobs_done", 0)), int(run.get("bytes_total", 0))
    sent = int(run.get("bytes_transferred", 0))
    finished = run.get("phase") == "finished"
    elapsed = max((float(run.get("finished_at") or 0) if finished else (now or time.time()))
                  - float(run.get("started_at") or 0), 1e-3) if run.get("started_at") else None
    percent = (100.0 if finished else None) if total < 0 else (
        round(100 * min(done, total) / total, 1) if total else 100.0)
    rate = sent / elapsed if elapsed and sent else None
    if finished or total < 0 or not elapsed:
        eta = None
    elif size and rate:
        eta = round(max(size - sent, 0) / rate, 1)
    else:
        eta = round((total - done) * elapsed / done, 1) if done else None
    return {"files_listed": max(listed, int(run.get("files_scanned", 0))),
            "bytes_listed": int(run.get("bytes_listed", 0)), "files_total": max(total, 0)
            if total >= 0 else None, "bytes_total": size if total >= 0 else None,
            "percent": percent, "bytes_per_s": round(rate) if rate else None, "eta_s": eta}


async def _check_target(rt: Runtime, body: ConnectorCreate, exclude: str | None = None) -> None:
    if await rt.state.share(body.target_share) is None:
        raise HTTPException(422, [{"loc": ["body", "target_share"], "type": "value_error",
                                   "msg": "no such share: create it first (POST /api/v1/shares)"}])
    for other in await rt.state.connectors():
        if other.id == exclude or other.target_share != body.target_share:
            continue
        a, b = other.target_prefix, body.target_prefix
        if not a or not b or a == b or a.startswith(b + "/") or b.startswith(a + "/"):
            raise HTTPException(422, [{"loc": ["body", "target_prefix"], "type": "value_error",
                                       "msg": f"overlaps connector {other.name!r} in this share; "
                                              "give each connector its own target_prefix"}])


def _seal_mapping(rt: Runtime, mapping: IdentityMapping,
                  sealed: str | None) -> tuple[dict, str | None]:
    """The mapping to store (without the LDAP bind password) and that password, encrypted."""
    ldap = mapping.ldap
    if ldap is not None and ldap.bind_password is not None:
        sealed = rt.box.seal(ldap.bind_password)
    stored = mapping.model_dump(mode="json")
    if stored.get("ldap"):
        stored["ldap"]["bind_password"] = None
    return stored, sealed if ldap is not None else None


def _sealed(rt: Runtime, body) -> dict:
    """The secrets a create/update body carries, encrypted, under their stored names; a new
    SharePoint credential replaces the other kind of credential."""
    out: dict = {}
    if getattr(body, "password", None) is not None:
        out["password_enc"] = rt.box.seal(body.password)
    if getattr(body, "client_secret", None) is not None:
        out |= {"credential": "client_secret", "client_secret_enc": rt.box.seal(body.client_secret),
                "certificate_enc": None, "certificate_password_enc": None,
                # a new secret's expiry is the one given with it (or unknown), never the old one's
                "secret_expires_at": getattr(body, "secret_expires_at", None)}
    if getattr(body, "certificate", None) is not None:
        password = body.certificate_password
        out |= {"credential": "certificate", "certificate_enc": rt.box.seal(body.certificate),
                "certificate_password_enc": rt.box.seal(password) if password else None,
                "client_secret_enc": None}
    elif getattr(body, "certificate_password", None) is not None:
        out["certificate_password_enc"] = rt.box.seal(body.certificate_password)
    return out


@router.post("/connectors", status_code=201)
async def create_connector(body: ConnectorCreate, request: Request) -> dict:
    rt = rt_of(request)
    await _check_target(rt, body)
    await check_mapping(rt, body.identity_mapping)
    fields = body.model_dump(exclude=SECRET_INPUTS | {"identity_mapping"})
    mapping, ldap_enc = _seal_mapping(rt, body.identity_mapping, None)
    c = Connector(**(fields | _sealed(rt, body)),
                  identity_mapping=IdentityMapping.model_validate(mapping),
                  ldap_password_enc=ldap_enc)
    check_someone_is_told(rt, c)
    if c.kind == "sharepoint":
        c.site_id, c.drive_id = await resolve_library(rt, c)
    else:
        await check_smb(rt, c)
    await rt.state.save_connector(c)
    await rt.state.set_status(c.id, paused=0, next_due=time.time())  # first sync right away
    await record(rt, "connector.created", c)
    return await _view(rt, c)


@router.post("/connectors/test")
async def test_connector(body: ConnectorCreate, request: Request) -> dict:
    """Run the checks a save would (the console's "Test connection"); saves nothing. SMB: each
    check with its outcome; SharePoint: the credentials, site and library."""
    rt = rt_of(request)
    fields = body.model_dump(exclude=SECRET_INPUTS | {"identity_mapping"})
    c = Connector(**(fields | _sealed(rt, body)))
    if c.kind == "sharepoint":
        await resolve_library(rt, c)  # a refusal is its 422
        return {"ok": True, "checks": [{"check": "library", "ok": True, "field": None,
                                        "message": "signed in and found the library",
                                        "detail": None}]}
    checks = await smb_checks(rt, c)
    return {"ok": all(ch.ok for ch in checks), "checks": as_json(checks)}


ConnectorState = Literal["idle", "running", "paused", "auth_failed", "error"]
PAGE_READ = 200  # connectors read a round trip while a filtered page fills


@router.get("/connectors")
async def list_connectors(
        request: Request, response: Response,
        limit: int | None = Query(None, ge=1, le=1000, description=(
            "page size; the next page's cursor comes in the X-Next-Cursor header (none: the "
            "last page). Without it, every connector at once")),
        cursor: str | None = Query(None, max_length=64, description="X-Next-Cursor of the "
                                   "page before"),
        state: ConnectorState | None = None,
        kind: Literal["smb", "sharepoint"] | None = None,
        flag: Literal["stale", "suspicious_empty"] | None = Query(None, description=(
            "only connectors raising this flag"))) -> list[dict]:
    """Connectors in id order, a page at a time with `limit`, filtered by state, kind, flag."""
    rt = rt_of(request)
    ids = await rt.state.connector_pages.ids()
    if cursor is not None:
        ids = ids[bisect.bisect_right(ids, cursor):]
    page: list[dict] = []
    for start in range(0, len(ids), max(limit or 0, PAGE_READ)):
        chunk = ids[start:start + max(limit or 0, PAGE_READ)]
        for view in await _views(rt, await rt.state.connector_pages.records(chunk)):
            if (state in (None, view["status"]["state"]) and kind in (None, view["kind"])
                    and (flag is None or flag in view["status"]["flags"])):
                page.append(view)
            if limit is not None and len(page) == limit:
                if view["id"] != ids[-1]:
                    response.headers["X-Next-Cursor"] = view["id"]
                return page
    return page


@router.get("/connectors/{cid}")
async def get_connector(cid: str, request: Request) -> dict:
    rt = rt_of(request)
    return await _view(rt, await connector_or_404(rt, cid))


def _check_patch(c: Connector, body: ConnectorUpdate) -> None:
    """422 for fields of the other kind of connector, and for explicit nulls: a stored field
    cannot be emptied (a connector without a server, or `"client_secret": null` read as new
    credentials), so null is refused rather than guessed at; leave the field out instead.
    A throttle's null is its "no limit"."""
    foreign = (SHAREPOINT_FIELDS if c.kind == "smb" else SMB_FIELDS) & body.model_fields_set
    nulls = {f for f in body.model_fields_set if getattr(body, f) is None} - foreign \
        - THROTTLE_FIELDS  # null lifts a throttle
    problems = [(f, f"not a field of a {c.kind} connector") for f in sorted(foreign)]
    problems += [(f, "may not be null: leave the field out to keep its value")
                 for f in sorted(nulls)]
    if problems:
        raise HTTPException(422, [{"loc": ["body", f], "type": "value_error", "msg": msg}
                                  for f, msg in problems])


@router.patch("/connectors/{cid}")
async def update_connector(cid: str, body: ConnectorUpdate, request: Request) -> dict:
    rt = rt_of(request)
    c = await connector_or_404(rt, cid)
    _check_patch(c, body)
    changes = body.model_dump(exclude_unset=True, exclude=SECRET_INPUTS | {"identity_mapping"})
    changes |= _sealed(rt, body)
    if body.identity_mapping is not None:
        await check_mapping(rt, body.identity_mapping)
        changes["identity_mapping"], changes["ldap_password_enc"] = _seal_mapping(
            rt, body.identity_mapping, c.ldap_password_enc)
        changes["identity_version"] = c.identity_version + 1  # re-label synced files
    changes["updated_at"] = datetime.now(UTC)
    source_changed = bool((SMB_FIELDS | SHAREPOINT_FIELDS) & body.model_fields_set)
    if source_changed:
        changes["config_version"] = c.config_version + 1  # workers drop the old session
    try:
        updated = Connector.model_validate(c.model_dump() | changes)
    except ValidationError as exc:  # a combination the stored connector cannot hold
        raise HTTPException(422, [{"loc": ["body", *e["loc"]], "type": e["type"], "msg": e["msg"]}
                                  for e in exc.errors()]) from None
    check_someone_is_told(rt, updated)
    if updated.kind == "smb" and (source_changed or "sync_mode" in body.model_fields_set):
        await check_smb(rt, updated)  # two-way now: may the account write?
    if updated.kind == "sharepoint" and source_changed:
        updated.site_id, updated.drive_id = await resolve_library(rt, updated)
        if updated.drive_id != c.drive_id:
            await rt.state.delta_positions.forget(c.id)  # another library: from scratch
    await rt.state.save_connector(updated)
    await record(rt, "connector.updated", updated, fields=sorted(body.model_fields_set))
    if source_changed and await rt.state.clear_auth_failed(c.id):
        await _resume_after_new_credentials(rt, updated)
    return await _view(rt, updated)


async def _resume_after_new_credentials(rt: Runtime, c: Connector) -> None:
    """A held run goes on (its lease gets its expiry back); with no run in progress, the
    next one starts now, from the saved delta position."""
    run = await rt.state.run(c.id)
    if run and run.get("phase") != "finished":
        await rt.state.hold_lease(c.id, rt.settings.lease_ttl_s)
    else:
        await rt.state.set_status(c.id, next_due=time.time())
    await record(rt, "connector.auth_restored", c)


@router.delete("/connectors/{cid}", status_code=204)
async def delete_connector(cid: str, request: Request) -> Response:
    """The configuration goes; the target share and its files stay."""
    rt = rt_of(request)
    c = await connector_or_404(rt, cid)
    await rt.state.delete_connector(cid)
    await rt.state.conflicts.forget_connector(cid)
    await rt.broker.delete_parked(cid)
    await record(rt, "connector.deleted", c)
    return Response(status_code=204)


@router.post("/connectors/{cid}/sync", status_code=202)
async def sync_now(cid: str, request: Request) -> dict:
    rt = rt_of(request)
    c = await connector_or_404(rt, cid)
    status = await rt.state.status(c.id)
    if status.get("auth_failed") == "1":
        raise HTTPException(409, "the source refused the connector's credentials "
                                 f"({status.get('auth_error', '')}): update them (PATCH)")
    if status.get("paused") == "1":
        raise HTTPException(409, "connector is paused: resume it first")
    now = datetime.now(UTC)
    if not in_window(c.sync_windows, now):
        opens = next_open(c.sync_windows, now)
        raise HTTPException(409, "outside the connector's sync windows: the next one opens "
                                 f"{opens.isoformat(timespec='minutes')}")
    await rt.broker.publish("commands", "run", RunRequested(connector_id=c.id))
    return {"accepted": True}


@router.post("/connectors/{cid}/pause")
async def pause(cid: str, request: Request) -> dict:
    rt = rt_of(request)
    c = await connector_or_404(rt, cid)
    await rt.state.set_status(c.id, paused=1)
    await rt.state.hold_lease(c.id, None)  # the paused run keeps the connector until resumed
    await record(rt, "connector.paused", c)
    return await _view(rt, c)


@router.post("/connectors/{cid}/resume")
async def resume(cid: str, request: Request) -> dict:
    rt = rt_of(request)
    c = await connector_or_404(rt, cid)
    await rt.state.set_status(c.id, paused=0)
    if (await rt.state.status(c.id)).get("auth_failed") != "1":  # else it waits for credentials
        await rt.state.hold_lease(c.id, rt.settings.lease_ttl_s)
        await rt.state.schedule.wake(c.id, time.time())  # its parked work comes back too
    await record(rt, "connector.resumed", c)
    return await _view(rt, c)
