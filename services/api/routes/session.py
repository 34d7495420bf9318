"""Who may call the API: the admin or the read-only bearer token, or a console session made
from either.

A console login trades a token (and the admin's name, for the audit log) for a random
session id in an HttpOnly, SameSite=Strict cookie; the store keeps only a hash of the id, with
an expiry, and the role the token gave (shared/store/api_access.py). Requests that change
something on the strength of the cookie must also carry `X-Requested-With: scaidrive-console`,
a header a cross-site form cannot send. A read-only caller may GET anything and change nothing.

Failed token checks (wrong bearer tokens, failed console logins) are counted per client IP in
a fixed window; past the limit every token check from that IP is refused with 429, the right
token included, until the window ends, so the tokens cannot be guessed at speed.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from contextvars import ContextVar
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from shared.store.api_access import ApiAccess

log = logging.getLogger(__name__)

COOKIE = "scaidrive_session"
SESSION_TTL_S = 12 * 3600
CONSOLE_HEADER = ("x-requested-with", "scaidrive-console")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
ADMIN, READONLY = "admin", "readonly"
# Who is acting, for the audit log: the session's name, or the API caller's X-ScaiDrive-Actor.
ACTOR: ContextVar[str] = ContextVar("actor", default="api")

router = APIRouter(prefix="/api/v1")


class Login(BaseModel):
    token: str = Field(min_length=1, max_length=1000)
    name: str = Field(default="admin", min_length=1, max_length=100)


def _access(request: Request) -> ApiAccess:
    access: ApiAccess = request.app.state.rt.state.api_access
    return access


def _same(given: str, expected: str) -> bool:
    """Constant time, whatever the lengths: compare digests, so not even the length leaks."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                               hashlib.sha256(expected.encode()).digest())


def _role_of(request: Request, token: str) -> str | None:
    settings = request.app.state.settings
    readonly = settings.api_readonly_token
    # Both comparisons always run, so the time taken does not tell which token was close.
    is_admin = _same(token, settings.api_token.get_secret_value())
    is_readonly = readonly is not None and _same(token, readonly.get_secret_value())
    return ADMIN if is_admin else READONLY if is_readonly else None


# --- failed token checks, per client IP ---------------------------------------------------------

def _client(request: Request) -> str:
    # Behind a local reverse proxy uvicorn already put X-Forwarded-For's client here.
    return request.client.host if request.client else "unknown"


async def _too_many(request: Request, retry_after: int | None = None) -> HTTPException:
    if retry_after is None:
        retry_after = await _access(request).window_left_s(_client(request))
    return HTTPException(429, "too many failed token checks from this address: try again later",
                         headers={"Retry-After": str(max(int(retry_after), 1))})


async def _refuse_if_locked(request: Request) -> None:
    """A right token is refused too while the address is locked out: else the lockout would
    tell a guesser which of its guesses was right."""
    failed = await _access(request).failed_checks(_client(request))
    if failed is not None and failed >= request.app.state.settings.api_auth_max_failures:
        raise await _too_many(request)


async def _count_failure(request: Request) -> None:
    """Count a failed check; the failure that reaches the limit locks the address out (and is
    logged, once per window); any past the limit is answered 429 rather than 401."""
    settings = request.app.state.settings
    # The window starts at the first failure and is not extended by later ones (fixed).
    count, ttl = await _access(request).count_failed_check(_client(request),
                                                           settings.api_auth_window_s)
    if count == settings.api_auth_max_failures:
        log.warning("auth: %d failed token checks from %s: token checks from it refused for %ds",
                    count, _client(request), ttl)
    if count > settings.api_auth_max_failures:
        raise await _too_many(request, ttl)


async def check_token(request: Request, token: str) -> str | None:
    """The caller's role for `token`, or None (the failure counted); 429 while locked out."""
    role = _role_of(request, token)
    if role is None:
        await _count_failure(request)
    else:
        await _refuse_if_locked(request)
    return role


# --- the dependency every /api/v1 route has (except login and logout) ---------------------------

async def _session(request: Request) -> dict[str, Any] | None:
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    return await _access(request).session(session_id)


def _role(session: dict[str, Any]) -> str:
    # Sessions made before roles existed were made from the admin token, the only one then.
    return str(session.get("role", ADMIN))


def _forbid_changes(request: Request, role: str) -> None:
    if role == READONLY and request.method not in SAFE_METHODS:
        raise HTTPException(403, "read-only access: this token (or the console session made "
                                 "from it) may look at everything but change nothing")


async def authenticate(request: Request) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        role = await check_token(request, token)
        if role is not None:
            _forbid_changes(request, role)
            ACTOR.set(request.headers.get("x-scaidrive-actor", "api")[:100])
            return
    session = await _session(request)
    if session is None:
        raise HTTPException(401, "missing or wrong bearer token, or no console session",
                            headers={"WWW-Authenticate": "Bearer"})
    _forbid_changes(request, _role(session))
    if request.method not in SAFE_METHODS and \
            request.headers.get(CONSOLE_HEADER[0]) != CONSOLE_HEADER[1]:
        raise HTTPException(403, f"console requests that change something need the "
                                 f"{CONSOLE_HEADER[0]}: {CONSOLE_HEADER[1]} header")
    ACTOR.set(session["name"])


def _record(name: str, role: str) -> dict[str, str]:
    # An admin session keeps the record it had before roles (absent role = admin, see _role).
    return {"name": name} if role == ADMIN else {"name": name, "role": role}


@router.post("/session", status_code=204)
async def login(body: Login, request: Request, response: Response) -> Response:
    role = await check_token(request, body.token)
    if role is None:
        raise HTTPException(401, "wrong token")
    session_id = secrets.token_urlsafe(32)
    await _access(request).open_session(session_id, _record(body.name, role), SESSION_TTL_S)
    response.status_code = 204
    response.set_cookie(COOKIE, session_id, max_age=SESSION_TTL_S, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.get("/session")
async def whoami(request: Request) -> dict[str, str]:
    """Who is signed in; `role` is there for a read-only session (the console hides what it
    may not do), absent for an admin one."""
    session = await _session(request)
    if session is None:
        raise HTTPException(401, "no console session")
    return _record(session["name"], _role(session))


@router.delete("/session", status_code=204)
async def logout(request: Request, response: Response) -> Response:
    session_id = request.cookies.get(COOKIE)
    if session_id:
        await _access(request).close_session(session_id)
    response.status_code = 204
    response.delete_cookie(COOKIE, path="/")
    return response
