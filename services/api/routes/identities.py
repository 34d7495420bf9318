"""ScaiDrive users (the directory owners are mapped to) and each connector's mapping report."""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import TypeAdapter, ValidationError

from shared.app.runtime import Runtime
from shared.config.active_directory import unowned_reason
from shared.config.connector_model import IdentityMapping
from shared.config.identity_mapping import User, parse_table
from shared.store.users import StoredUsers
from shared.sync.folders import is_folder

router = APIRouter(prefix="/api/v1")
_USERS = TypeAdapter(list[User])
# The body is read by hand (JSON or CSV): described here so the schema (and its fuzzing) has it.
_USERS_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": TypeAdapter(User).json_schema()}},
    "text/csv": {"schema": {"type": "string", "description": "header: id,email,display_name"}},
}}}


def _rows(body: str) -> list[dict[str, str]]:
    try:
        return list(csv.DictReader(io.StringIO(body)))
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise HTTPException(422, [{"loc": ["body"], "type": "value_error",
                                   "msg": f"not readable as CSV: {exc}"}]) from None


def directory(rt: Runtime) -> StoredUsers:
    return rt.state.users


@router.put("/users", openapi_extra=_USERS_BODY)
async def import_users(request: Request) -> dict[str, int]:
    """JSON `[{id, email, display_name}]`, or CSV with the header `id,email,display_name`.
    `changed`: the users that were new or differed; none, and no connector labels its files
    again (the next scans relabel the system owner's files only after an import that changed
    some)."""
    body = (await request.body()).decode("utf-8-sig", errors="replace")
    is_csv = "csv" in request.headers.get("content-type", "")
    rows = _rows(body) if is_csv else None
    try:
        users = _USERS.validate_python(rows) if is_csv else _USERS.validate_json(body)
    except ValidationError as exc:
        detail = [{"loc": ["body", *(e["loc"][:1])], "msg": e["msg"],
                   "type": e["type"]} for e in exc.errors()]
        if is_csv:  # name the CSV line (the header is line 1)
            for d in detail:
                d["loc"] = ["body", f"line {int(d['loc'][1]) + 2}"]
        raise HTTPException(422, detail) from None
    changed = await directory(request.app.state.rt).put(users)
    return {"imported": len(users), "changed": changed}


@router.get("/users")
async def list_users(request: Request) -> list[dict[str, Any]]:
    users = await directory(request.app.state.rt).users()
    return [u.model_dump(mode="json") for u in sorted(users, key=lambda u: u.id)]


async def check_mapping(rt: Runtime, mapping: IdentityMapping) -> None:
    """Table lines must name users that exist: 422 naming each bad line."""
    if not mapping.table:
        return
    known = {u.id for u in await directory(rt).users()}
    _, problems = parse_table(mapping.table, known)
    if problems:
        message = "; ".join(f"line {p.line}: {p.message}" for p in problems)
        raise HTTPException(422, [{"loc": ["body", "identity_mapping", "table"],
                                   "type": "value_error", "msg": message}])


@router.get("/connectors/{cid}/identities")
async def identities(cid: str, request: Request) -> list[dict[str, Any]]:
    """Each source principal seen, how it was mapped, and how many files it owns."""
    rt: Runtime = request.app.state.rt
    if await rt.state.connector(cid) is None:
        raise HTTPException(404, f"no connector {cid!r}")
    groups: defaultdict[tuple[str | None, str, str, float | None], dict[str, int]] = \
        defaultdict(lambda: {"files": 0, "bytes": 0})
    for path, rec in (await rt.state.index(cid)).items():
        if is_folder(path):
            continue  # a two-way empty folder's entry: no file, nobody's
        key = (rec.principal, rec.owner, rec.method, rec.score)
        groups[key]["files"] += 1
        groups[key]["bytes"] += rec.size
    rows = [{"source_principal": p, "user_id": owner, "method": method, "score": score, **n}
            for (p, owner, method, score), n in sorted(groups.items(),
                                                       key=lambda kv: -kv[1]["files"])]
    for row in rows:  # why nobody's account: a group, a built-in principal, no match
        if row["method"] == "system_owner" and row["source_principal"]:
            row["reason"] = await _why_unowned(rt, cid, str(row["source_principal"]))
    return rows


async def _why_unowned(rt: Runtime, cid: str, principal: str) -> str:
    known = await rt.state.owners.last_known(cid, principal)
    return ((known.reason if known else None) or unowned_reason(principal)
            or "no ScaiDrive user matched this owner")
