"""Conflicts of two-way connectors: list them, look at one, resolve it.

A resolve records the decision (compare-and-set: open -> resolved) and hands it to the
conflict service: 202. It is refused (409) when the conflict is no longer open or another
resolve won the race. No source or storage is touched here: the transfer worker that applies
the decision first checks that neither side changed since detection; if one did, the conflict
ends superseded with the reason ("the source version changed since detection"), nothing is
written, and the next run detects it again (GET the conflict to follow it).
"""
from __future__ import annotations

import logging
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
