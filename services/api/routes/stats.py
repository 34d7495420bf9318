"""Monitoring behind the console: a connector's counters for the last day, week and month
(per-day hashes, see shared/store/daily_counters.py), its pending transfer queue (from
RabbitMQ) and the target share's usage (kept incrementally: no bucket listing per page view)."""
from __future__ import annotations

from fastapi import APIRouter, Request

from services.api.routes.connectors import connector_or_404
from shared.app.runtime import Runtime
from shared.store.daily_counters import period_totals

router = APIRouter(prefix="/api/v1")


@router.get("/connectors/{cid}/stats")
async def connector_stats(cid: str, request: Request) -> dict:
    rt: Runtime = request.app.state.rt
    c = await connector_or_404(rt, cid)
    share = await rt.state.share(c.target_share) or {}
    return {"periods": await period_totals(rt.state, cid),
            "queue_depth": await rt.broker.queue_depth(cid),
            "share": {"name": c.target_share, "usage_bytes": share.get("usage_bytes", 0),
                      "quota_bytes": share.get("quota_bytes")}}
