"""Admin API routes under /api/v1 for shares: one bucket each, with its usage."""
from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from services.api.routes.connectors import rt_of
from shared.sync.keys import BUCKET_NAME

router = APIRouter(prefix="/api/v1")


class ShareCreate(BaseModel):
    name: str = Field(pattern=BUCKET_NAME.pattern,
                      description="3-63 characters: lowercase letters, digits and '-'")
    quota_bytes: int | None = Field(default=None, ge=0)


@router.post("/shares", status_code=201)
async def create_share(body: ShareCreate, request: Request) -> dict:
    rt = rt_of(request)
    await asyncio.to_thread(rt.storage.create_bucket, body.name)
    share = {"name": body.name, "quota_bytes": body.quota_bytes, "created_at": time.time()}
    if not await rt.state.save_share(share):
        raise HTTPException(409, f"share {body.name!r} exists already")
    created = await rt.state.share(body.name)
    if created is None:  # deleted again before it could be read back
        raise HTTPException(404, f"no share {body.name!r}")
    return created


class ShareUpdate(BaseModel):
    quota_bytes: int | None = Field(ge=0, description="bytes the share may hold; null: no quota")


@router.patch("/shares/{name}")
async def update_share(name: str, body: ShareUpdate, request: Request) -> dict:
    """Change a share's quota. Files already stored stay; a file that would not fit any more
    is a per-file failure `quota_exceeded` (with its size and the share's) in later runs."""
    rt = rt_of(request)
    if not await rt.state.set_share_quota(name, body.quota_bytes):
        raise HTTPException(404, f"no share {name!r}")
    share = await rt.state.share(name)
    if share is None:
        raise HTTPException(404, f"no share {name!r}")
    return share


@router.get("/shares")
async def list_shares(request: Request) -> list[dict]:
    """Each share with its usage and the connectors that feed it (id, name)."""
    rt = rt_of(request)
    feeding: dict[str, list[dict]] = {}
    for c in await rt.state.connectors():
        feeding.setdefault(c.target_share, []).append({"id": c.id, "name": c.name,
                                                       "target_prefix": c.target_prefix})
    return [s | {"connectors": feeding.get(s["name"], [])} for s in await rt.state.shares()]


@router.get("/shares/{name}")
async def get_share(name: str, request: Request) -> dict:
    share = await rt_of(request).state.share(name)
    if share is None:
        raise HTTPException(404, f"no share {name!r}")
    return share


@router.delete("/shares/{name}", status_code=204)
async def delete_share(name: str, request: Request) -> Response:
    rt = rt_of(request)
    await get_share(name, request)
    users = [c.name for c in await rt.state.connectors() if c.target_share == name]
    if users:
        raise HTTPException(409, f"share is the target of connector(s) {users}: delete them first")
    await asyncio.to_thread(rt.storage.remove_bucket, name)
    await rt.state.delete_share(name)
    return Response(status_code=204)
