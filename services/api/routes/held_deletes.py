"""Deletions a run held back (more than the connector's `max_delete_percent` of one side): an
admin lists them, then approves (the next run deletes them) or rejects them: the files are kept
(two-way: the next run restores each from the side that still has it; one-way: the objects stay
in ScaiDrive, no longer tracked as copies of the source)."""
from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request

from services.api.routes.audit import record
from services.api.routes.connectors import connector_or_404
from shared.app.runtime import Runtime

router = APIRouter(prefix="/api/v1")


@router.get("/connectors/{cid}/held-deletes")
async def held_deletes(cid: str, request: Request) -> dict:
    rt: Runtime = request.app.state.rt
    await connector_or_404(rt, cid)
    held = await rt.state.delete_holds.held(cid)
    return {"count": len(held),
            "files": [{"path": p, "side": side} for p, side in sorted(held.items())]}


@router.post("/connectors/{cid}/held-deletes/{decision}")
async def settle(cid: str, decision: str, request: Request) -> dict:
    rt: Runtime = request.app.state.rt
    c = await connector_or_404(rt, cid)
    if decision not in ("approve", "reject"):
        raise HTTPException(404, "use .../held-deletes/approve or .../held-deletes/reject")
    held = await rt.state.delete_holds.settle(cid, approve=decision == "approve")
    if not held:
        raise HTTPException(409, "no deletions are held for this connector")
    if decision == "reject":
        if c.kind == "sharepoint":  # its position left the library's files to their records
            await rt.state.delta_positions.keep_files(cid, await rt.state.index_records(
                cid, [path for path, side in held.items() if side == "source"]))
        await rt.state.drop_index(cid, *held)  # forgotten: the side still holding it copies it
    await rt.state.set_status(cid, next_due=time.time())  # applied by a run starting now
    event = "connector.deletes_approved" if decision == "approve" else "connector.deletes_rejected"
    await record(rt, event, c, count=len(held))
    return {"decision": decision, "count": len(held)}
