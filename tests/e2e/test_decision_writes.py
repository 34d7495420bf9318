"""A conflict decision's writes are conditional on the versions its check saw: an edit landing
in the moment between the stale check and the write is never overwritten; the decision is
superseded instead, with the reason, exactly as when the check itself finds the change.

In-process, against the real Samba share, Redis and the S3 server: the transfer worker's own
`Transfers` applies a RESOLVED job built by the conflict service's `transfer_job`, and a hook
on the check (`changed_side`) makes the edit right after the check answered "current". Only the
broker is a recorder (the events it would publish)."""
from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from services.conflicts.decisions import transfer_job
from services.transfer import conflict_decisions
from services.transfer.handlers import Transfers
from shared.config.connector_model import Connector
from shared.contracts import ConflictDetected, SideVersion
from shared.sync.model import wire_version

pytestmark = pytest.mark.e2e
SOURCE = b"the source's version, as detected\n"
SCAIDRIVE = b"ScaiDrive's version, as detected: a different length\n"
USER_EDIT = b"a user's edit at the file server, made just after the check\n"
SCAIDRIVE_EDIT = b"an edit in ScaiDrive, made just after the check\n"


async def conflict(worker: Transfers, samba, s3, winner: str):
    """A two-way SMB connector, a file different on both sides, a conflict on it resolved with
    `winner`: (connector, the RESOLVED job, the file on the share, the bucket)."""
    base = f"decide-{uuid.uuid4().hex[:8]}"
    samba.mkdir(base)
    on_disk = samba.write_file(f"{base}/report.txt", SOURCE)
    bucket = f"decide-{uuid.uuid4().hex[:8]}"
    s3.client().make_bucket(bucket)
    s3.client().put_object(bucket, "report.txt", io.BytesIO(SCAIDRIVE), len(SCAIDRIVE))
    rt = worker.rt
    c = Connector(name=base, target_share=bucket, schedule="1h", sync_mode="two_way",
                  server=f"smb://{samba.host}:{samba.port}/{samba.share}/{base}",
                  username=samba.username, password_enc=rt.box.seal(SecretStr(samba.password)))
    await rt.state.save_connector(c)
    entry = worker.sources.get(c).stat("report.txt")
    obj = s3.client().stat_object(bucket, "report.txt")
    now = datetime.now(UTC)
    msg = ConflictDetected(
        conflict_id=uuid.uuid4().hex[:16], connector_id=c.id, connector_name=c.name,
        path="report.txt", policy="manual", source_version=wire_version(entry),
        source=SideVersion(size=entry.size, mtime=now, editor="alice"),
        scaidrive=SideVersion(size=obj.size, mtime=now, editor="bob", etag=obj.etag))
    store = rt.state.conflicts
    assert await store.create(msg)
    won, record = await store.resolve(msg.conflict_id, winner, "carol@example.com")
    assert won and record is not None
    return c, transfer_job(record), on_disk, bucket


def read_object(s3, bucket: str) -> bytes:
    obj = s3.client().get_object(bucket, "report.txt")
    try:
        return obj.read()
    finally:
        obj.close()
        obj.release_conn()


def edit_after_the_check(monkeypatch, edit) -> None:
    """`edit()` runs right after the stale check found the decision current."""
    real = conflict_decisions.changed_side

    async def then_edit(*args):
        found = await real(*args)
        await asyncio.to_thread(edit)
        return found
    monkeypatch.setattr(conflict_decisions, "changed_side", then_edit)


async def assert_superseded(worker: Transfers, job, side: str) -> None:
    store = worker.rt.state.conflicts
    rec = await store.get(job.conflict_id)
    assert rec is not None
    assert (rec["state"], rec["applied_at"]) == ("superseded", None)
    assert rec["reason"] == (f"the {side} version changed since detection, as the decision "
                             "was being applied")
    assert job.path not in await store.held_paths(job.connector_id)  # the next run re-detects
    assert worker.rt.broker.events(job.conflict_id) == ["conflict.superseded"]  # type: ignore[attr-defined]


async def test_a_source_edit_right_after_the_check_survives_scaidrive_winning(
        worker, samba, s3, monkeypatch):
    c, job, on_disk, bucket = await conflict(worker, samba, s3, "scaidrive")
    edit_after_the_check(monkeypatch, lambda: on_disk.write_bytes(USER_EDIT))

    assert await worker.two_way.resolve(c, job) == ("skipped", 0)

    assert on_disk.read_bytes() == USER_EDIT  # the user's edit, not ScaiDrive's version
    assert read_object(s3, bucket) == SCAIDRIVE  # ScaiDrive's version kept for the next run
    await assert_superseded(worker, job, "source")


async def test_a_scaidrive_edit_right_after_the_check_survives_the_source_winning(
        worker, samba, s3, monkeypatch):
    c, job, on_disk, bucket = await conflict(worker, samba, s3, "source")

    def edit() -> None:
        s3.client().put_object(bucket, "report.txt", io.BytesIO(SCAIDRIVE_EDIT),
                               len(SCAIDRIVE_EDIT))
    edit_after_the_check(monkeypatch, edit)

    assert await worker.two_way.resolve(c, job) == ("skipped", 0)

    assert read_object(s3, bucket) == SCAIDRIVE_EDIT  # not replaced by the source's version
    assert on_disk.read_bytes() == SOURCE
    await assert_superseded(worker, job, "ScaiDrive")


@pytest.mark.parametrize("winner", ["scaidrive", "source"])
async def test_with_no_edit_in_the_window_the_decision_is_applied(worker, samba, s3, winner):
    c, job, on_disk, bucket = await conflict(worker, samba, s3, winner)

    assert (await worker.two_way.resolve(c, job))[0] == "transferred"

    both = SCAIDRIVE if winner == "scaidrive" else SOURCE
    assert on_disk.read_bytes() == both and read_object(s3, bucket) == both
    rec = await worker.rt.state.conflicts.get(job.conflict_id)
    assert rec is not None and rec["state"] == "resolved" and rec["applied_at"]
    assert worker.rt.broker.events(job.conflict_id) == ["conflict.resolved"]  # type: ignore[attr-defined]
    assert job.path not in await worker.rt.state.conflicts.held_paths(c.id)


async def test_a_redelivered_decision_whose_write_had_landed_is_applied_not_superseded(
        worker, samba, s3):
    """The first delivery checked, wrote ScaiDrive's version to the share and died before it
    recorded anything: the redelivery's conditional write finds the source changed, compares,
    finds both sides identical and completes the decision."""
    c, job, on_disk, _bucket = await conflict(worker, samba, s3, "scaidrive")
    store = worker.rt.state.conflicts
    await store.set_flag(job.conflict_id, conflict_decisions.CHECKED)
    on_disk.write_bytes(SCAIDRIVE)  # what the first delivery wrote

    assert (await worker.two_way.resolve(c, job))[0] == "transferred"

    rec = await store.get(job.conflict_id)
    assert rec is not None and (rec["state"], bool(rec["applied_at"])) == ("resolved", True)
    assert on_disk.read_bytes() == SCAIDRIVE
    assert worker.rt.broker.events(job.conflict_id) == ["conflict.resolved"]  # type: ignore[attr-defined]
