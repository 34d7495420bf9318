"""Conflicts of two-way connectors: list them, look at one, resolve it.

A resolve records the decision (compare-and-set: open -> resolved) and hands it to the
conflict service: 202. It is refused (409) when the conflict is no longer open or another
resolve won the race. No source or storage is touched here: the transfer worker that applies
the decision first checks that neither side changed since detection; if one did, the conflict
ends superseded with the reason ("the source version changed since detection"), nothing is
written, and the next run detects it again (GET the conflict to follow it).

A conflict's notices (the `conflict.detected` event, the admins' e-mail) that failed for good
show as `notify_failed` (the error) and `notify_failed_at`; `POST /conflicts/{id}/notify` asks
the conflict service to send them again (each only if it was not sent): 202, or 409 when
there is nothing left to send.

A decision whose job failed for good (dead-lettered) shows as `apply_failed` (the error) and
`apply_failed_at`, its path still held. `POST /conflicts/{id}/reapply` sends the recorded
decision again (same winner, same resolver) through the conflict service to the transfer
worker, which checks it is still current as the first time: 202, or 409 when the conflict is
not a resolved one whose decision is still to apply.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from services.api.routes.audit import record as audit
from services.api.routes.session import ACTOR
from shared.app.runtime import Runtime
from shared.contracts import ConflictDecision, Winner
from shared.store.conflict_records import ConflictStore

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1")


class Resolve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    winner: Winner
    resolved_by: str | None = Field(default=None, min_length=1, max_length=200)  # the actor


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def _store(rt: Runtime) -> ConflictStore:
    return rt.state.conflicts


@router.get("/conflicts")
async def list_conflicts(request: Request, connector: str | None = None,
                         state: Literal["open", "resolved", "superseded"] | None = None,
                         limit: int = Query(100, ge=1, le=10000)) -> list[dict[str, Any]]:
    rt = _rt(request)
    ids = [connector] if connector else [c.id for c in await rt.state.connectors()]
    return await _store(rt).list(ids, state, limit)


@router.get("/conflicts/{conflict_id}")
async def get_conflict(conflict_id: str, request: Request) -> dict[str, Any]:
    rec = await _store(_rt(request)).get(conflict_id)
    if rec is None:
        raise HTTPException(404, f"no conflict {conflict_id!r}")
    return rec


def _not_open(rec: dict[str, Any]) -> HTTPException:
    if rec["state"] == "resolved":
        return HTTPException(409, f"conflict {rec['id']} is already resolved: "
                                  f"{rec['winner']} chosen by {rec['resolved_by']} "
                                  f"at {rec['resolved_at']}")
    reason = rec.get("reason") or "a newer conflict on the path"
    return HTTPException(409, f"conflict {rec['id']} is superseded ({reason}): "
                              "the next run detects it again")


@router.post("/conflicts/{conflict_id}/resolve", status_code=202)
async def resolve(conflict_id: str, body: Resolve, request: Request) -> dict[str, Any]:
    """Record the decision and send it to be applied; the record as it is now (`resolved`).
    Whether it is applied or turns out stale is seen on the conflict afterwards."""
    rt = _rt(request)
    store = _store(rt)
    rec = await get_conflict(conflict_id, request)
    if rec["state"] != "open":
        raise _not_open(rec)
    c = await rt.state.connector(rec["connector_id"])
    if c is None:
        raise HTTPException(409, f"the connector of conflict {conflict_id} was deleted")
    resolved_by = body.resolved_by or ACTOR.get()
    won, now = await store.resolve(conflict_id, body.winner, resolved_by)
    if now is None:
        raise HTTPException(404, f"no conflict {conflict_id!r}")
    if not won:
        raise _not_open(now)
    await _send(rt, store, conflict_id, body.winner, resolved_by)
    await audit(rt, "conflict.resolved", c, conflict_id=conflict_id, path=rec["path"],
                winner=body.winner, resolved_by=resolved_by)
    return now


async def _send(rt: Runtime, store: ConflictStore, conflict_id: str, winner: Winner,
                resolved_by: str) -> None:
    """Hand the decision to the conflict service; if that fails, the conflict is open again
    (never resolved with no decision on its way)."""
    try:
        await rt.broker.publish("commands", "conflict", ConflictDecision(
            conflict_id=conflict_id, winner=winner, resolved_by=resolved_by))
    except Exception as exc:
        log.error("decision on conflict %s not sent: %s", conflict_id, exc)
        await store.reopen(conflict_id, resolved_by)
        raise HTTPException(503, "the decision could not be queued: try again") from None


def _notified(rec: dict[str, Any]) -> bool:
    """The event went out and, under manual review, the admins' e-mail too."""
    return not rec.get("notify_failed") and rec["published_detected"] and \
        (rec["mailed"] or rec["policy"] != "manual")


@router.post("/conflicts/{conflict_id}/notify", status_code=202)
async def notify(conflict_id: str, request: Request) -> dict[str, Any]:
    """Send the conflict's notices again (after they failed: `notify_failed`); the conflict
    service sends within a second whichever was not sent. The record as it is now."""
    rt = _rt(request)
    rec = await get_conflict(conflict_id, request)
    if _notified(rec):
        raise HTTPException(409, f"conflict {conflict_id} was announced and its admins told "
                                 "already: nothing to send again")
    c = await rt.state.connector(rec["connector_id"])
    if c is None:
        raise HTTPException(409, f"the connector of conflict {conflict_id} was deleted")
    await _store(rt).notice_requested(conflict_id, time.time())
    await audit(rt, "conflict.notify_requested", c, conflict_id=conflict_id, path=rec["path"])
    return await get_conflict(conflict_id, request)


@router.post("/conflicts/{conflict_id}/reapply", status_code=202)
async def reapply(conflict_id: str, request: Request) -> dict[str, Any]:
    """Apply a recorded decision again (after `apply_failed`); the record as it is now."""
    rt = _rt(request)
    rec = await get_conflict(conflict_id, request)
    if rec["state"] != "resolved":
        raise HTTPException(409, f"conflict {conflict_id} is {rec['state']}: there is no "
                                 "decision to apply (resolve it first)")
    if rec["applied_at"]:
        raise HTTPException(409, f"the decision on conflict {conflict_id} was applied at "
                                 f"{rec['applied_at']}: nothing to apply again")
    c = await rt.state.connector(rec["connector_id"])
    if c is None:
        raise HTTPException(409, f"the connector of conflict {conflict_id} was deleted")
    await _store(rt).reapply_requested(conflict_id)
    try:
        await rt.broker.publish("commands", "conflict", ConflictDecision(
            conflict_id=conflict_id, winner=rec["winner"], resolved_by=rec["resolved_by"]))
    except Exception as exc:
        log.error("decision on conflict %s not sent again: %s", conflict_id, exc)
        raise HTTPException(503, "the decision could not be queued: try again") from None
    await audit(rt, "conflict.reapply_requested", c, conflict_id=conflict_id, path=rec["path"],
                winner=rec["winner"])
    return await get_conflict(conflict_id, request)
