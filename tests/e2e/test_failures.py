"""Failures an admin can work: grouped by path across runs, in plain words with the server's
message as detail, searched, paged, exported as CSV, and retried now."""
from __future__ import annotations

import csv
import io
import os

import pytest

from shared.errors import PLAIN
from tests.e2e.helpers import new_connector
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e


def test_failures_grouped_by_path_searched_exported_and_retried(stack, samba):
    api = stack.api()
    for i in range(3):
        samba.write_file(f"worked/ok{i}.txt", b"fine")
    for name in ("payroll.xlsx", "board-minutes.docx"):
        os.chmod(samba.write_file(f"worked/{name}", b"alice only", owner="alice"), 0o600)
    cid = new_connector(api, samba, "worked", "worked")["id"]
    first = wait_run(api, cid)
    second = sync_and_wait(api, cid)
    assert second["status"]["run"]["outcome"] == "partial"

    raw = api.get(f"/connectors/{cid}/failures").json()
    assert len(raw) == 4  # two files, two runs
    grouped = api.get(f"/connectors/{cid}/failures", params={"group": "path"})
    assert grouped.headers["x-total-count"] == "2"
    rows = {r["path"]: r for r in grouped.json()}
    assert set(rows) == {"payroll.xlsx", "board-minutes.docx"}
    for r in rows.values():
        assert r["count"] == 2 and r["first_seen"] < r["last_seen"]
        assert r["cause"] == "permission_denied" and r["plain"] == PLAIN["permission_denied"]
        assert r["run_id"] == second["status"]["run"]["run_id"] != first["status"]["run"]["run_id"]
        assert r["message"]  # the server's own words, kept as the detail

    found = api.get(f"/connectors/{cid}/failures", params={"group": "path", "q": "PAYROLL"})
    assert [r["path"] for r in found.json()] == ["payroll.xlsx"]
    paged = api.get(f"/connectors/{cid}/failures", params={"group": "path", "limit": 1,
                                                           "offset": 1})
    assert len(paged.json()) == 1 and paged.headers["x-total-count"] == "2"

    exported = api.get(f"/connectors/{cid}/failures", params={"group": "path", "format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["path"] for r in table} == set(rows) and {r["count"] for r in table} == {"2"}
    assert table[0]["plain"] == PLAIN["permission_denied"]

    for name in ("payroll.xlsx", "board-minutes.docx"):
        os.chmod(samba.path(f"worked/{name}"), 0o644)  # the admin fixed the rights
    retried = api.post(f"/connectors/{cid}/failures/retry")
    assert retried.status_code == 202 and retried.json()["paths"] == 2
    third = wait_run(api, cid, after=second["status"]["run"]["run_id"])
    assert third["status"]["run"]["outcome"] == "success"
    assert third["status"]["progress"]["files_transferred"] == 2
