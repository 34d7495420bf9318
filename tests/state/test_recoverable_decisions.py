"""Recoverable decisions, against the real Redis: a conflict decision whose job was
dead-lettered shows as `apply_failed` (with the error) instead of leaving its path held in
silence, and an approval of held deletions is spent only by a run that closes successfully.

The conflict service's dead-letter handler and the run life cycle's `close_run` run as the
services run them; only the broker is a recorder."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from cryptography.fernet import Fernet
from pydantic import SecretStr

from services.conflicts.dead_letters import on_dead_letter
from services.conflicts.decisions import transfer_job
from shared.app.run_lifecycle import approvals_used, close_run
from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.config.secrets import SecretBox
from shared.config.settings import Settings
from shared.contracts import ConflictDetected, FileVersion, SideVersion


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def publish(self, exchange: str, routing_key: str, _msg, **_kw) -> None:
        self.sent.append((exchange, routing_key))


def runtime(state) -> Runtime:
    key = SecretStr(Fernet.generate_key().decode())
    settings = Settings(s3_access_key=SecretStr("k"), s3_secret_key=SecretStr("s"),
                        secret_key=key, namespace=state.ns)
    return Runtime(settings, state, Recorder(), SecretBox(key))  # type: ignore[arg-type]


async def resolved_conflict(state, path: str = "plan.docx") -> tuple[Connector, dict]:
    c = Connector(name="two-way", target_share="share-two", schedule="1h", sync_mode="two_way")
    await state.save_connector(c)
    now = datetime.now(UTC)
    msg = ConflictDetected(
        conflict_id="cf" + path.replace(".", ""), connector_id=c.id, connector_name=c.name,
        path=path, policy="manual", source_version=FileVersion(size=3, mtime_ns=1),
        source=SideVersion(size=3, mtime=now), scaidrive=SideVersion(size=4, mtime=now, etag="e"))
    await state.conflicts.create(msg)
    _won, record = await state.conflicts.resolve(msg.conflict_id, "scaidrive", "carol")
    return c, record


def dead_letter(msg, error: str) -> SimpleNamespace:
    """A message as `{ns}.dead.conflicts` delivers it (aio-pika's fields the handler reads)."""
    return SimpleNamespace(type=type(msg).__name__, body=msg.model_dump_json().encode(),
                           headers={"x-error": error})


async def test_a_dead_lettered_decision_shows_on_its_conflict_with_the_error(state):
    rt = runtime(state)
    c, record = await resolved_conflict(state)
    job = transfer_job(record)

    await on_dead_letter(rt, dead_letter(job, "ConnectionError: the share went away"))

    rec = await state.conflicts.get(record["id"])
    assert rec["apply_failed"] == "ConnectionError: the share went away"
    assert rec["apply_failed_at"] and rec["state"] == "resolved" and rec["applied_at"] is None
    assert (await state.conflicts.held_paths(c.id))[job.path] == record["id"]  # still held

    await state.conflicts.reapply_requested(record["id"])  # what POST .../reapply clears
    rec = await state.conflicts.get(record["id"])
    assert (rec["apply_failed"], rec["apply_failed_at"]) == (None, None)


async def test_an_applied_decision_is_not_shown_as_failed_by_a_late_dead_letter(state):
    rt = runtime(state)
    _c, record = await resolved_conflict(state, "done.txt")
    await state.conflicts.applied(record["id"])

    await on_dead_letter(rt, dead_letter(transfer_job(record), "a copy that died late"))

    assert (await state.conflicts.get(record["id"]))["apply_failed"] is None


async def run(rt: Runtime, cid: str, run_id: str, approved: frozenset[str],
              error: str | None) -> None:
    """A run whose scan let `approved` deletions through, closed with `error` (None: success)."""
    await rt.state.begin_run(cid, run_id, "test")
    await approvals_used(rt, cid, approved)
    await close_run(rt, cid, run_id, error)


async def test_an_approval_is_spent_only_by_a_run_that_succeeds(state):
    rt = runtime(state)
    c = Connector(name="held", target_share="share-held", schedule="1h")
    await state.save_connector(c)
    await state.delete_holds.hold(c.id, {"a.txt": "scaidrive", "b.txt": "scaidrive"})
    await state.delete_holds.settle(c.id, approve=True)
    approved = await state.delete_holds.approved(c.id)
    assert approved == {"a.txt", "b.txt"}

    await run(rt, c.id, "r1", approved, error="the listing failed")
    assert await state.delete_holds.approved(c.id) == approved  # the next run uses it again

    await state.delete_holds.hold(c.id, {"c.txt": "scaidrive"})  # held, then approved while r2 runs
    await state.delete_holds.settle(c.id, approve=True)
    await run(rt, c.id, "r2", approved, error=None)
    assert await state.delete_holds.approved(c.id) == {"c.txt"}  # r2 spent what it applied only
    assert json.loads((await state.run(c.id))["approved_deletes_used"]) == ["a.txt", "b.txt"]
