"""`GET /connectors` a page at a time and filtered, as an operator with thousands of connectors
uses it (and the CLI, which follows the pages): every connector exactly once across the pages,
in id order; the filters by state, kind and flag keep exactly the matching ones."""
from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import new_connector, write
from tests.e2e.test_cli import cli

pytestmark = pytest.mark.e2e


def pages(api, limit: int, **filters) -> list[list[dict]]:
    out, cursor = [], None
    while True:
        params = filters | {"limit": limit} | ({"cursor": cursor} if cursor else {})
        resp = api.get("/connectors", params=params)
        assert resp.status_code == 200, resp.text
        out.append(resp.json())
        cursor = resp.headers.get("x-next-cursor")
        if not cursor:
            return out


def test_pages_cover_every_connector_once_and_filters_keep_the_matching(stack, samba):
    api = stack.api()
    for i in range(7):  # a connector is checked at the file server on save: its folder exists
        write(samba.share_dir / f"paged-{i}", "a.txt", b"a")
    mine = [new_connector(api, samba, f"paged-{i}", f"paged-{i}", schedule="24h")["id"]
            for i in range(7)]
    assert api.post(f"/connectors/{mine[3]}/pause").status_code in (200, 202)
    everything = [c["id"] for c in api.get("/connectors").json()]  # unpaged: all at once
    paged = pages(api, 3)
    assert all(len(p) <= 3 for p in paged) and len(paged) >= 3
    ids = [c["id"] for p in paged for c in p]
    assert ids == sorted(everything) and len(set(ids)) == len(ids)  # each once, in id order
    assert set(mine) <= set(ids)

    paused = [c["id"] for p in pages(api, 2, state="paused") for c in p]
    assert mine[3] in paused and not set(mine[:3] + mine[4:]) & set(paused)
    assert all(c["status"]["state"] == "paused" for p in pages(api, 2, state="paused")
               for c in p)
    assert not {c["id"] for p in pages(api, 5, kind="sharepoint") for c in p} & set(mine)
    assert set(mine) <= {c["id"] for p in pages(api, 5, kind="smb") for c in p}
    assert api.get("/connectors", params={"state": "sleeping"}).status_code == 422
    assert api.get("/connectors", params={"limit": 0}).status_code == 422

    listed = cli(stack, "connectors", "list", "--state", "paused", "-o", "json")  # all pages
    assert listed.returncode == 0, listed.stderr
    assert mine[3] in {c["id"] for c in json.loads(listed.stdout)}
