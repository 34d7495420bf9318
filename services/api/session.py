"""Who may call the API: the admin bearer token, or a console session made from it.

A console login trades the token (and the admin's name, for the audit log) for a random
session id in an HttpOnly, SameSite=Strict cookie; Redis keeps only a hash of the id, with an
expiry. Requests that change something on the strength of the cookie must also carry
`X-Requested-With: scaidrive-console`, a header a cross-site form cannot send.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from contextvars import ContextVar

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

COOKIE = "scaidrive_session"
SESSION_TTL_S = 12 * 3600
CONSOLE_HEADER = ("x-requested-with", "scaidrive-console")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Who is acting, for the audit log: the session's name, or the API caller's X-ScaiDrive-Actor.
ACTOR: ContextVar[str] = ContextVar("actor", default="api")

router = APIRouter(prefix="/api/v1")


class Login(BaseModel):
    token: str = Field(min_length=1, max_length=1000)
    name: str = Field(default="admin", min_length=1, max_length=100)


def _key(request: Request, session_id: str) -> str:
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    return request.app.state.rt.state.key("session", digest)


def _token_ok(request: Request, token: str) -> bool:
    expected = request.app.state.settings.api_token.get_secret_value()
    return hmac.compare_digest(token.encode(), expected.encode())


async def _session(request: Request) -> dict | None:
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    raw = await request.app.state.rt.state.r.get(_key(request, session_id))
    return json.loads(raw) if raw else None


async def authenticate(request: Request) -> None:
    """The dependency every /api/v1 route has (except login itself)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _token_ok(request, token):
        ACTOR.set(request.headers.get("x-scaidrive-actor", "api")[:100])
        return
    session = await _session(request)
    if session is None:
        raise HTTPException(401, "missing or wrong bearer token, or no console session",
                            headers={"WWW-Authenticate": "Bearer"})
    if request.method not in SAFE_METHODS and \
            request.headers.get(CONSOLE_HEADER[0]) != CONSOLE_HEADER[1]:
        raise HTTPException(403, f"console requests that change something need the "
                                 f"{CONSOLE_HEADER[0]}: {CONSOLE_HEADER[1]} header")
    ACTOR.set(session["name"])


@router.post("/session", status_code=204)
async def login(body: Login, request: Request, response: Response) -> Response:
    if not _token_ok(request, body.token):
        raise HTTPException(401, "wrong admin token")
    session_id = secrets.token_urlsafe(32)
    await request.app.state.rt.state.r.set(_key(request, session_id),
                                           json.dumps({"name": body.name}), ex=SESSION_TTL_S)
    response.status_code = 204
    response.set_cookie(COOKIE, session_id, max_age=SESSION_TTL_S, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.get("/session")
async def whoami(request: Request) -> dict:
    session = await _session(request)
    if session is None:
        raise HTTPException(401, "no console session")
    return {"name": session["name"]}


@router.delete("/session", status_code=204)
async def logout(request: Request, response: Response) -> Response:
    session_id = request.cookies.get(COOKIE)
    if session_id:
        await request.app.state.rt.state.r.delete(_key(request, session_id))
    response.status_code = 204
    response.delete_cookie(COOKIE, path="/")
    return response
