"""Admin API settings and wiring: the read-only token's rules, and every /api/v1 route (but
console login and logout) behind the token check, hidden routes included."""
from __future__ import annotations

import re

import httpx
import pytest
from fastapi import routing
from pydantic import ValidationError

from services.api.main import create_app
from services.api.routes import session
from shared.config.settings import ApiSettings

BASE = {"s3_access_key": "k", "s3_secret_key": "s", "api_token": "admin-token-0123456789",
        "secret_key": "2bZ0cJq5Rzv3l8E0GqfP6oQmYwR4c9x1uT7yH3kL5nA="}


def test_readonly_token_is_optional_long_and_not_the_admin_token():
    assert ApiSettings(**BASE).api_readonly_token is None
    assert ApiSettings(**BASE, api_readonly_token="").api_readonly_token is None
    ok = ApiSettings(**BASE, api_readonly_token="look-but-do-not-touch")
    assert ok.api_readonly_token.get_secret_value() == "look-but-do-not-touch"
    assert (ok.api_auth_max_failures, ok.api_auth_window_s) == (10, 300)
    for bad, why in (("short", "at least 16"), (BASE["api_token"], "must differ")):
        with pytest.raises(ValidationError, match=why) as exc:
            ApiSettings(**BASE, api_readonly_token=bad)
        error = exc.value.errors()[0]  # what settings.load prints: the name and the message
        assert error["loc"] == ("api_readonly_token",) and BASE["api_token"] not in error["msg"]


def _api_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every /api/v1 route, those left out of the OpenAPI schema too."""
    out = []
    for route in routing.iter_route_contexts(app.routes):
        if (route.path or "").startswith("/api/v1"):
            out += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
    return out


async def test_every_api_route_wants_a_token():
    """In process, without Redis: with no credential at all, the check answers before any
    handler (or body validation) runs."""
    app = create_app(ApiSettings(**BASE))
    # No lifespan (no Redis, no broker): a route that got past the check would crash.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api.test") as client:
        answers = {(m, p): (await client.request(m, re.sub(r"{[^}]+}", "x", p), json={}))
                   .status_code for m, p in _api_routes(app)}
    assert len(answers) > 20
    # The schema and its page are public; login takes the token in its body; logout only
    # forgets the caller's own cookie.
    open_ = {("GET", "/api/v1/openapi.json"): 200, ("GET", "/api/v1/docs"): 200,
             ("POST", "/api/v1/session"): 422, ("DELETE", "/api/v1/session"): 204}
    for route, status in answers.items():
        assert status == open_.get(route, 401), route


def test_token_comparison_does_not_depend_on_length():
    assert session._same("a" * 40, "a" * 40)
    assert not session._same("a", "a" * 40) and not session._same("a" * 41, "a" * 40)
