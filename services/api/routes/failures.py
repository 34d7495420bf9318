"""A connector's per-file failures as an admin works them: each with its cause in plain words
(the server's own message kept as the detail), grouped by path across runs (first seen, last
seen, how often), searched, paged, exported as CSV, and retried now (a run, which tries every
file not yet in ScaiDrive)."""
from __future__ import annotations

import csv
import io
from typing import Literal

from fastapi import APIRouter, Query, Request, Response

from services.api.routes.connectors import connector_or_404, iso_time, sync_now
from shared.app.runtime import Runtime
from shared.errors import plain
from shared.store.state import FAILURES_KEPT

router = APIRouter(prefix="/api/v1")
CSV_COLUMNS = ("path", "cause", "plain", "stage", "message", "count", "first_seen", "last_seen",
               "run_id")


def _matches(row: dict, cause: str | None, run_id: str | None, q: str | None) -> bool:
    return ((cause is None or row["cause"] == cause)
            and (run_id is None or row.get("run_id") == run_id)
            and (not q or q.casefold() in f"{row['path']}\n{row['message']}".casefold()))


def _by_path(rows: list[dict]) -> list[dict]:
    """One row per path (newest first, as stored): its latest failure, and when and how often
    it failed across the runs kept."""
    groups: dict[str, dict] = {}
    for r in rows:
        g = groups.get(r["path"])
        if g is None:
            groups[r["path"]] = r | {"count": 1, "first_seen": r["at"], "last_seen": r["at"]}
        else:
            g["count"] += 1
            g["first_seen"] = min(g["first_seen"], r["at"])
    return list(groups.values())


@router.get("/connectors/{cid}/failures")
async def failures(cid: str, request: Request, response: Response,
                   cause: str | None = None, run_id: str | None = None,
                   q: str | None = Query(None, max_length=500,
                                         description="text in the path or the message"),
                   group: Literal["path"] | None = Query(None, description=(
                       "path: one row per path across runs (count, first and last seen)")),
                   format: Literal["json", "csv"] = "json",
                   offset: int = Query(0, ge=0),
                   limit: int = Query(1000, ge=1, le=10000)) -> object:
    """Newest first; the number of rows before paging in X-Total-Count."""
    rt: Runtime = request.app.state.rt
    await connector_or_404(rt, cid)
    rows = [r for r in await rt.state.failures(cid, FAILURES_KEPT) if _matches(r, cause, run_id, q)]
    if group == "path":
        rows = _by_path(rows)
    total = len(rows)
    page = [_view(r) for r in rows[offset:offset + limit]]
    if format == "csv":
        return _csv(page, cid, total)
    response.headers["X-Total-Count"] = str(total)
    return page


def _view(r: dict) -> dict:
    out = dict(r, at=iso_time(r["at"]), plain=plain(r["cause"]))
    for key in ("first_seen", "last_seen"):
        if key in r:
            out[key] = iso_time(r[key])
    return out


def _csv(page: list[dict], cid: str, total: int) -> Response:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for r in page:
        writer.writerow({k: r.get(k, r.get("at") if k in ("first_seen", "last_seen") else "")
                         for k in CSV_COLUMNS} | {"count": r.get("count", 1)})
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="failures-{cid}.csv"',
        "X-Total-Count": str(total)})


@router.post("/connectors/{cid}/failures/retry", status_code=202)
async def retry_failed(cid: str, request: Request) -> dict:
    """Retry the failed files now: a run (a failed file is not in the index, so the run tries it
    again; files that synced since are not touched). 409 while paused or refused."""
    rt: Runtime = request.app.state.rt
    await connector_or_404(rt, cid)
    paths = {r["path"] for r in await rt.state.failures(cid, FAILURES_KEPT)}
    await sync_now(cid, request)
    return {"accepted": True, "paths": len(paths)}
