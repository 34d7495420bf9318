"""The CLI's side of the admin API: one authenticated client, calls that exit with the error in
plain words (a 422 names the field refused), paged listings followed to the end."""
from __future__ import annotations

import json
import os
import sys

import httpx


def api() -> httpx.Client:
    port = os.environ.get("SCAIDRIVE_API_PORT", "8080")
    base = os.environ.get("SCAIDRIVE_API_URL", f"http://127.0.0.1:{port}")
    token = os.environ.get("SCAIDRIVE_API_TOKEN")
    if not token:
        sys.exit("SCAIDRIVE_API_TOKEN is not set")
    return httpx.Client(base_url=base + "/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def fail(resp: httpx.Response) -> None:
    """Exit 1 with the API's refusal: a 422 as one line per field, others as today."""
    if resp.status_code == 422:
        problems = invalid_fields(resp)
        if problems:
            sys.exit("refused (422):\n" + "\n".join(f"  {p}" for p in problems))
    sys.exit(f"error {resp.status_code}: {resp.text}")


def invalid_fields(resp: httpx.Response) -> list[str]:
    """`{"detail": [{"loc": ["body", "schedule"], "msg": ...}]}` as "schedule: <msg>" lines."""
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        return []
    if not isinstance(detail, list):
        return []
    lines = []
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = [str(part) for part in item.get("loc", []) if part not in ("body", "query")]
        field = ".".join(loc) or "the request"
        msg = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        lines.append(f"{field}: {msg}")
    return lines


def call(method: str, path: str, **kwargs) -> dict | list | None:
    with api() as client:
        resp = client.request(method, path, **kwargs)
    if resp.status_code >= 400:
        fail(resp)
    return resp.json() if resp.content else None


def all_pages(path: str, params: dict, page: int = 200) -> list:
    """Every item of a paged listing, following X-Next-Cursor page by page."""
    items: list = []
    cursor = None
    with api() as client:
        while True:
            query = {k: v for k, v in params.items() if v} | {"limit": page}
            resp = client.get(path, params=query | ({"cursor": cursor} if cursor else {}))
            if resp.status_code >= 400:
                fail(resp)
            items += resp.json()
            cursor = resp.headers.get("x-next-cursor")
            if not cursor:
                return items


def connector(cid: str) -> dict:
    """`GET /connectors/{id}`: the connector's config and `status`."""
    view = call("GET", f"/connectors/{cid}")
    if not isinstance(view, dict):
        sys.exit(f"unexpected answer for connector {cid}: {view!r}")
    return view


def status(cid: str) -> dict:
    """The connector's `status`, as `GET /connectors/{id}` shows it."""
    return connector(cid)["status"]


def print_json(data) -> None:
    """Exactly the JSON the CLI always printed (scripts parse it)."""
    print(json.dumps(data, indent=2, ensure_ascii=False))
