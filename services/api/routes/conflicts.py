"""Conflicts of two-way connectors: list them, look at one, resolve it.

A resolve is refused (409) when the conflict is no longer open, when another resolve won the
race, or when either side changed since detection: then the conflict is superseded and its
path released, so the next run detects it again with the versions as they are now.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shared import errors
from shared.store.conflict_records import ConflictStore
from shared.config.connectors import Connector
from shared.contracts import ConflictDecision, Winner
from shared.sync.keys import object_key
from shared.sync.one_way import IndexEntry, same_content
from shared.app.runtime import Runtime
from shared.sources.factory import open_source
from services.api.routes.audit import record as audit
from services.api.routes.session import ACTOR

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1")


class Resolve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    winner: Winner
    resolved_by: str | None = Field(default=None, min_length=1, max_length=200)  # the actor


def _rt(request: Request) -> Runtime:
    return request.app.state.rt


def _store(rt: Runtime) -> ConflictStore:
    return ConflictStore(rt.state.r, rt.state.ns)


@router.get("/conflicts")
async def list_conflicts(request: Request, connector: str | None = None,
                         state: Literal["open", "resolved", "superseded"] | None = None,
                         limit: int = Query(100, ge=1, le=10000)) -> list[dict]:
    rt = _rt(request)
    ids = [connector] if connector else [c.id for c in await rt.state.connectors()]
    return await _store(rt).list(ids, state, limit)


@router.get("/conflicts/{conflict_id}")
async def get_conflict(conflict_id: str, request: Request) -> dict:
    rec = await _store(_rt(request)).get(conflict_id)
    if rec is None:
        raise HTTPException(404, f"no conflict {conflict_id!r}")
    return rec


def _not_open(rec: dict) -> HTTPException:
    if rec["state"] == "resolved":
        return HTTPException(409, f"conflict {rec['id']} is already resolved: "
                                  f"{rec['winner']} chosen by {rec['resolved_by']} "
                                  f"at {rec['resolved_at']}")
    reason = rec.get("reason") or "a newer conflict on the path"
    return HTTPException(409, f"conflict {rec['id']} is superseded ({reason}): "
                              "the next run detects it again")


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None


async def _changed_side(rt: Runtime, c: Connector, rec: dict) -> str | None:
    """Which side no longer holds the version the conflict was detected with, if any."""
    key = object_key(c.target_prefix, rec["path"])
    obj = await asyncio.to_thread(rt.storage.stat, c.target_share, key)
    if _etag(obj.etag if obj else None) != _etag(rec["scaidrive"].get("etag")):
        return "ScaiDrive"
    return await asyncio.to_thread(_source_changed, rt, c, rec)


def _source_changed(rt: Runtime, c: Connector, rec: dict) -> str | None:
    """Blocking (a source call): run in a thread."""
    v = rec["source_version"]
    known = IndexEntry(v["size"], v["mtime_ns"], v.get("file_id"), v.get("content_tag"))
    source = open_source(c, rt.box, rt.settings)
    try:
        entry = source.stat(rec["path"])
    except errors.NotFound:
        return "source"
    except errors.SyncError as exc:
        raise HTTPException(503, f"could not check the source's version ({exc.cause}): "
                                 "try again") from None
    finally:
        source.close()
    return None if same_content(entry, known) else "source"


@router.post("/conflicts/{conflict_id}/resolve", status_code=202)
async def resolve(conflict_id: str, body: Resolve, request: Request) -> dict:
    rt = _rt(request)
    store = _store(rt)
    rec = await get_conflict(conflict_id, request)
    if rec["state"] != "open":
        raise _not_open(rec)
    c = await rt.state.connector(rec["connector_id"])
    if c is None:
        raise HTTPException(409, f"the connector of conflict {conflict_id} was deleted")
    changed = await _changed_side(rt, c, rec)
    if changed is not None:
        won, now = await store.supersede(conflict_id, f"the {changed} version changed since "
                                                      "detection")
        if not won and now is not None:
            raise _not_open(now)
        raise HTTPException(409, f"stale: the {changed} version of {rec['path']!r} changed "
                                 "since the conflict was detected; the conflict is superseded "
                                 "and the path released: the next run detects it again with "
                                 "the current versions")
    body.resolved_by = body.resolved_by or ACTOR.get()
    won, now = await store.resolve(conflict_id, body.winner, body.resolved_by)
    if not won:
        raise _not_open(now) if now else HTTPException(404, f"no conflict {conflict_id!r}")
    await _send(rt, store, conflict_id, body)
    await audit(rt, "conflict.resolved", c, conflict_id=conflict_id, path=rec["path"],
                winner=body.winner, resolved_by=body.resolved_by)
    return now


async def _send(rt: Runtime, store: ConflictStore, conflict_id: str, body: Resolve) -> None:
    """Hand the decision to the conflict service; if that fails, the conflict is open again
    (never resolved with no decision on its way)."""
    try:
        await rt.broker.publish("commands", "conflict", ConflictDecision(
            conflict_id=conflict_id, winner=body.winner, resolved_by=body.resolved_by))
    except Exception as exc:
        log.error("decision on conflict %s not sent: %s", conflict_id, exc)
        await store.reopen(conflict_id, body.resolved_by)
        raise HTTPException(503, "the decision could not be queued: try again") from None
