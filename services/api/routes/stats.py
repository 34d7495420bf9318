"""Monitoring behind the console: a connector's counters for the last day, week and month
(per-day hashes, see shared/store/daily_counters.py), per hour over the last day and week (the
console's charts), its files waiting for a worker (`queue_depth`: the run's published files not
finished yet; the lanes are shared, so RabbitMQ cannot tell) and the target share's usage
(kept incrementally: no bucket listing per page view)."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request

from services.api.routes.connectors import connector_or_404
from shared.app.runtime import Runtime
from shared.store.daily_counters import hourly_series, period_totals

router = APIRouter(prefix="/api/v1")


@router.get("/connectors/{cid}/stats")
async def connector_stats(cid: str, request: Request) -> dict:
    rt: Runtime = request.app.state.rt
    c = await connector_or_404(rt, cid)
    share = await rt.state.share(c.target_share) or {}
    return {"periods": await period_totals(rt.state, cid),
            "queue_depth": rt.state.files_waiting(await rt.state.run(cid)),
            "share": {"name": c.target_share, "usage_bytes": share.get("usage_bytes", 0),
                      "quota_bytes": share.get("quota_bytes")}}


@router.get("/connectors/{cid}/stats/hourly")
async def connector_hourly(cid: str, request: Request,
                           period: Literal["day", "week"] = Query("day", description=(
                               "the last 24 hours or the last 7 days, an hour a point"))
                           ) -> list[dict]:
    """Files synced, errored, deleted, moved, in conflict and bytes synced, per hour (UTC),
    oldest first; `at` is the hour's start in Unix seconds."""
    rt: Runtime = request.app.state.rt
    await connector_or_404(rt, cid)
    return await hourly_series(rt.state, cid, 24 if period == "day" else 7 * 24)
