"""Conflicts found by real two-way runs (Samba, RabbitMQ, Redis, S3, aiosmtpd): a file edited
on both sides becomes one conflict, one email, one `conflict.detected`; nothing is overwritten
while it is open; each winner is applied on both sides and the next run sees the file in sync.
A decision on a file edited again after detection is not applied: the conflict is superseded
and the next run detects it anew."""
from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests.e2e.helpers import bucket_tree, disk_tree
from tests.e2e.sharepoint_helpers import EventTap
from tests.e2e.test_cli import cli
from tests.e2e.test_two_way import counts, put, two_way
from tests.fixtures.stack import sync_and_wait

pytestmark = pytest.mark.e2e
ADMIN = "storage-admins@example.com"


def open_conflicts(api, cid: str, n: int, timeout: float = 30) -> dict[str, dict]:
    """path -> record, once the conflict service has recorded `n` open conflicts."""
    deadline = time.monotonic() + timeout
    while len(found := api.get(f"/conflicts?connector={cid}&state=open").json()) < n:
        assert time.monotonic() < deadline, f"{len(found)} of {n} conflicts recorded"
        time.sleep(0.2)
    return {c["path"]: c for c in found}


def wait_superseded(api, conflict_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (rec := api.get(f"/conflicts/{conflict_id}").json())["state"] != "superseded":
        assert time.monotonic() < deadline, f"conflict {conflict_id} not superseded: {rec}"
        time.sleep(0.2)
    return rec


def wait_applied(api, cid: str, timeout: float = 60) -> None:
    """Until every decision has been applied by a transfer worker."""
    deadline = time.monotonic() + timeout
    while any(not c.get("applied_at") for c in api.get(f"/conflicts?connector={cid}").json()):
        assert time.monotonic() < deadline, "decisions not applied"
        time.sleep(0.2)


async def test_both_sides_edited_then_each_winner_applied(stack, samba, s3, smtp):
    api, root = stack.api(), samba.path("tw-conf")
    files = {f"{n}.txt": f"{n} as synced".encode() for n in ("src", "sd", "both", "same", "calm")}
    cid = two_way(api, samba, "tw-conf", files, admin_emails=[ADMIN])
    events = await EventTap(stack.ns, "conflict.*").open()
    try:
        for name in ("src", "sd", "both"):
            samba.write_file(f"tw-conf/{name}.txt", f"{name}: the share's edit".encode())
            put(s3, "tw-conf", f"{name}.txt", f"{name}: ScaiDrive's longer edit".encode())
        samba.write_file("tw-conf/same.txt", b"the same edit on both sides")
        put(s3, "tw-conf", "same.txt", b"the same edit on both sides")
        view = sync_and_wait(api, cid)
        assert counts(view) == {"files_conflicted": 3}, api.get(f"/connectors/{cid}/failures").text

        conflicts = open_conflicts(api, cid, 3)
        assert sorted(conflicts) == ["both.txt", "sd.txt", "src.txt"]  # same.txt: just recorded
        rec = conflicts["sd.txt"]
        assert (rec["source"]["size"], rec["scaidrive"]["size"]) == \
            (len(b"sd: the share's edit"), len(b"sd: ScaiDrive's longer edit"))
        detected = [await events.get() for _ in range(3)]
        assert {e["event"] for e in detected} == {"conflict.detected"}
        assert sorted(e["path"] for e in detected) == sorted(conflicts)
        mail = smtp.wait_for(ADMIN, 3)
        assert sorted(m["Subject"].rsplit(": ", 1)[1] for m in mail) == sorted(conflicts)

        # While open, later runs overwrite nothing and raise nothing new.
        view = sync_and_wait(api, cid)
        assert counts(view) == {} and view["status"]["awaiting_admin"]["conflicts"] == 3
        assert (root / "sd.txt").read_bytes() == b"sd: the share's edit"
        assert bucket_tree(s3.client(), "tw-conf")["sd.txt"] != disk_tree(root)["sd.txt"]
        assert len(api.get(f"/conflicts?connector={cid}").json()) == 3

        listed = cli(stack, "conflicts", "list", "--connector", cid, "--state", "open",
                     "-o", "json")
        assert sorted(c["path"] for c in json.loads(listed.stdout)) == sorted(conflicts)
        by_cli = cli(stack, "conflicts", "resolve", conflicts["src.txt"]["id"],
                     "--winner", "source", "--by", "alice@example.com")
        assert by_cli.returncode == 0, by_cli.stderr
        for path, winner in (("sd.txt", "scaidrive"), ("both.txt", "keep_both")):
            resp = api.post(f"/conflicts/{conflicts[path]['id']}/resolve",
                            json={"winner": winner, "resolved_by": "alice@example.com"})
            assert resp.status_code == 202, resp.text
        again = api.post(f"/conflicts/{conflicts['sd.txt']['id']}/resolve",
                         json={"winner": "source"})
        assert again.status_code == 409 and "alice@example.com" in again.text
        wait_applied(api, cid)
        on_share = {p: (root / p).read_bytes() for p in disk_tree(root)}
        assert on_share["src.txt"] == b"src: the share's edit"
        assert on_share["sd.txt"] == b"sd: ScaiDrive's longer edit"
        assert on_share["both.txt"] == b"both: the share's edit"
        copy = f"both (ScaiDrive conflict {conflicts['both.txt']['id'][:8]}).txt"
        assert on_share[copy] == b"both: ScaiDrive's longer edit"
        assert bucket_tree(s3.client(), "tw-conf") == disk_tree(root)
        resolved = [await events.get() for _ in range(3)]
        assert {(e["event"], e["resolved_by"]) for e in resolved} == \
            {("conflict.resolved", "alice@example.com")}

        # In sync on both sides: the next run moves nothing and finds no conflict.
        assert counts(sync_and_wait(api, cid)) == {}
        assert len(smtp.messages(ADMIN)) == 3
    finally:
        await events.close()


def test_policy_resolves_without_an_admin(stack, samba, s3, smtp):
    api, root = stack.api(), samba.path("tw-policy")
    cid = two_way(api, samba, "tw-policy", {f"f{i}.txt": b"as synced" for i in range(3)},
                  admin_emails=[ADMIN + ".policy"], conflict_policy="scaidrive_wins")
    samba.write_file("tw-policy/f0.txt", b"share edit")
    put(s3, "tw-policy", "f0.txt", b"ScaiDrive edit")
    assert counts(sync_and_wait(api, cid)) == {"files_conflicted": 1}
    wait_applied(api, cid)
    (rec,) = api.get(f"/conflicts?connector={cid}").json()
    assert (rec["state"], rec["winner"], rec["resolved_by"], rec["automatic"]) == \
        ("resolved", "scaidrive", "policy:scaidrive_wins", True)
    assert (root / "f0.txt").read_bytes() == b"ScaiDrive edit"
    assert counts(sync_and_wait(api, cid)) == {}
    assert smtp.messages(ADMIN + ".policy") == []  # decided by policy: nobody to ask


async def test_decision_on_a_file_edited_again_is_superseded_and_detected_anew(
        stack, samba, s3, smtp):
    api, root = stack.api(), samba.path("tw-stale")
    cid = two_way(api, samba, "tw-stale", {"s.txt": b"as synced"},
                  admin_emails=[ADMIN + ".stale"])
    samba.write_file("tw-stale/s.txt", b"the share's edit")
    put(s3, "tw-stale", "s.txt", b"ScaiDrive's longer edit")
    assert counts(sync_and_wait(api, cid)) == {"files_conflicted": 1}
    first = open_conflicts(api, cid, 1)["s.txt"]
    events = await EventTap(stack.ns, "conflict.*").open()
    try:
        samba.write_file("tw-stale/s.txt", b"the share's second edit")  # after detection
        resp = api.post(f"/conflicts/{first['id']}/resolve",
                        json={"winner": "scaidrive", "resolved_by": "alice@example.com"})
        assert resp.status_code == 202, resp.text  # the API records it: no source I/O there
        assert resp.json()["state"] == "resolved"
        rec = wait_superseded(api, first["id"])
        assert rec["reason"] == "the source version changed since detection"
        event = await events.get()
        if (event["event"], event["conflict_id"]) == ("conflict.detected", first["id"]):
            event = await events.get()  # published just after the record the test waited for
        assert (event["event"], event["conflict_id"], event["reason"], event["winner"]) == \
            ("conflict.superseded", first["id"], rec["reason"], "scaidrive")
        assert (root / "s.txt").read_bytes() == b"the share's second edit"  # not overwritten
        assert bucket_tree(s3.client(), "tw-stale")["s.txt"] == \
            hashlib.sha256(b"ScaiDrive's longer edit").hexdigest()

        # The path is released: the next run detects the conflict again, as the sides are now.
        assert counts(sync_and_wait(api, cid)) == {"files_conflicted": 1}
        second = open_conflicts(api, cid, 1)["s.txt"]
        assert second["id"] != first["id"]
        assert second["source"]["size"] == len(b"the share's second edit")
        detected = await events.get()
        assert (detected["event"], detected["conflict_id"]) == ("conflict.detected", second["id"])
        assert (root / "s.txt").read_bytes() == b"the share's second edit"
    finally:
        await events.close()
