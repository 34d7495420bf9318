"""The audit log: who changed which connector, and what the system did on its own
(`connector.auth_failed`). Newest first; values of secrets never appear, only field names."""
from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query, Request

from services.api.routes.session import ACTOR
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector

router = APIRouter(prefix="/api/v1")


async def record(rt: Runtime, event: str, c: Connector, **detail) -> None:
    await rt.state.add_audit({"event": event, "connector_id": c.id, "connector_name": c.name,
                              "kind": c.kind, "actor": ACTOR.get(), **detail})


@router.get("/audit")
async def audit(request: Request, connector_id: str | None = None, event: str | None = None,
                limit: int = Query(100, ge=1, le=10000)) -> list[dict]:
    rt: Runtime = request.app.state.rt
    rows = [r for r in await rt.state.audit(10000)
            if (connector_id is None or r.get("connector_id") == connector_id)
            and (event is None or r.get("event") == event)]
    # What the services did on their own (a refused credential, held deletions, a stale flag)
    # has no admin behind it: its actor is "system".
    return [r | {"at": datetime.fromtimestamp(r["at"], UTC).isoformat(),
                 "actor": r.get("actor") or "system"} for r in rows[:limit]]
