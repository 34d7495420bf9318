"""The admin API's doors: every operation wants a token, the read-only token (and a console
session made from it) changes nothing, and failed token checks lock an address out for a while.

An API process of its own (own namespace, a small failure limit and a short window), so its
lockouts cannot touch the other tests. Client addresses come from X-Forwarded-For, which
uvicorn takes from a proxy on 127.0.0.1 (the documentation ranges used here are never
contacted: they are only header values).
"""
from __future__ import annotations

import json
import re
import secrets
import time

import httpx
import pytest
import redis

from tests.fixtures.stack import REDIS_URL, Stack

pytestmark = pytest.mark.e2e
CONSOLE = {"X-Requested-With": "scaidrive-console"}
LIMIT, WINDOW_S = 3, 4
# Console login takes the token in its body; logout only forgets the caller's own cookie.
OPEN = {("post", "/api/v1/session"), ("delete", "/api/v1/session")}


@pytest.fixture(scope="module")
def api(s3, tmp_path_factory):
    readonly = "ro-" + secrets.token_urlsafe(24)
    st = Stack(s3, tmp_path_factory.mktemp("security-logs"),
               SCAIDRIVE_API_READONLY_TOKEN=readonly,
               SCAIDRIVE_API_AUTH_MAX_FAILURES=str(LIMIT),
               SCAIDRIVE_API_AUTH_WINDOW_S=str(WINDOW_S))
    st.readonly = readonly
    try:
        yield st.start_api()
    finally:
        st.stop()


def client(st: Stack, token: str | None = None, ip: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers |= {"X-Forwarded-For": ip} if ip else {}
    return httpx.Client(base_url=f"http://127.0.0.1:{st.port}", headers=headers, timeout=30)


def operations(st: Stack) -> list[tuple[str, str]]:
    schema = client(st).get("/api/v1/openapi.json").json()
    ops = [(method, path) for path, item in schema["paths"].items() for method in item]
    assert len(ops) > 20
    return ops


def call(c: httpx.Client, method: str, path: str, **kw) -> httpx.Response:
    # Any value will do for a path parameter: the token check comes before the lookup.
    return c.request(method.upper(), re.sub(r"{[^}]+}", "x", path), **kw)


def test_every_operation_wants_a_token(api):
    anonymous = client(api)
    for method, path in operations(api):
        if (method, path) in OPEN:
            continue
        resp = call(anonymous, method, path, json={})
        assert resp.status_code == 401, (method, path, resp.text)


def test_readonly_token_reads_everything_and_changes_nothing(api):
    admin, reader = client(api, api.token), client(api, api.readonly)
    share = "ro-" + secrets.token_hex(4)
    assert admin.post("/api/v1/shares", json={"name": share}).status_code == 201
    for method, path in operations(api):
        if path == "/api/v1/session":  # the console's own: a bearer token is no session
            continue
        resp = call(reader, method, path, json={})
        if method == "get":
            assert resp.status_code in (200, 404), (method, path, resp.text)
        else:
            assert resp.status_code == 403, (method, path, resp.text)
            assert "read-only" in resp.json()["detail"]
    assert reader.delete(f"/api/v1/shares/{share}").status_code == 403
    assert reader.get(f"/api/v1/shares/{share}").status_code == 200  # still there
    assert admin.delete(f"/api/v1/shares/{share}").status_code == 204


def test_readonly_console_session(api):
    with client(api) as browser:
        login = browser.post("/api/v1/session", json={"token": api.readonly, "name": "Auditor"})
        assert login.status_code == 204
        assert browser.get("/api/v1/session").json() == {"name": "Auditor", "role": "readonly"}
        assert browser.get("/api/v1/connectors").status_code == 200
        refused = browser.post("/api/v1/shares", json={"name": "by-auditor"}, headers=CONSOLE)
        assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
        assert browser.get("/api/v1/shares/by-auditor").status_code == 404
        r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        stored = [json.loads(r.get(k)) for k in r.scan_iter(f"{api.ns}:session:*")]
        assert {"name": "Auditor", "role": "readonly"} in stored
        assert browser.delete("/api/v1/session", headers=CONSOLE).status_code == 204
        assert browser.get("/api/v1/connectors").status_code == 401


def _fail(c: httpx.Client, how: str) -> httpx.Response:
    if how == "login":
        return c.post("/api/v1/session", json={"token": "guess-" + secrets.token_hex(8)})
    return c.get("/api/v1/shares", headers={"Authorization": "Bearer guess-xyz"})


def test_failed_token_checks_lock_the_address_out(api):
    ip, other = "203.0.113.7", "203.0.113.8"
    attacker, right = client(api, ip=ip), client(api, api.token, ip=ip)
    with client(api, ip=ip) as browser:  # signed in before the lockout
        assert browser.post("/api/v1/session", json={"token": api.token}).status_code == 204
        for how in ("bearer", "login", "bearer"):  # both kinds of check count
            assert _fail(attacker, how).status_code == 401
        # Past the limit even the right token is refused: the answer tells a guesser nothing.
        locked = right.get("/api/v1/shares")
        assert locked.status_code == 429 and 1 <= int(locked.headers["retry-after"]) <= WINDOW_S
        assert attacker.post("/api/v1/session", json={"token": api.token}).status_code == 429
        assert _fail(attacker, "bearer").status_code == 429
        # A session is no token check: it goes on working.
        assert browser.get("/api/v1/shares").status_code == 200
    # Other addresses are not affected, and their successes reset nobody's counter.
    assert client(api, api.token, ip=other).get("/api/v1/shares").status_code == 200
    assert client(api, api.readonly, ip=other).get("/api/v1/shares").status_code == 200
    assert right.get("/api/v1/shares").status_code == 429
    time.sleep(int(locked.headers["retry-after"]) + 0.5)
    assert right.get("/api/v1/shares").status_code == 200  # the window passed
    logged = [line for line in api.logs().splitlines() if f"checks from {ip}" in line]
    assert len(logged) == 1 and "refused" in logged[0]  # one line per lockout
    assert api.token not in api.logs() and api.readonly not in api.logs()


def test_a_success_does_not_reset_the_count(api):
    ip = "203.0.113.9"
    attacker, right = client(api, ip=ip), client(api, api.token, ip=ip)
    assert _fail(attacker, "login").status_code == 401
    assert _fail(attacker, "bearer").status_code == 401
    assert right.get("/api/v1/shares").status_code == 200
    assert _fail(attacker, "login").status_code == 401  # the third failure: the limit
    assert right.get("/api/v1/shares").status_code == 429
