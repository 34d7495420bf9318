"""A two-way run removes from ScaiDrive what was deleted or renamed at the file server only
while ScaiDrive's object is the version the scan saw, up to the DELETE itself: an edit made in
ScaiDrive between the transfer's check and its DELETE is kept (S3's conditional DELETE,
If-Match), with its index record, so that the next run pushes it back to the file server (a
change wins over a deletion). Before, the check and the DELETE were two requests and the edit
was deleted.

In-process (`tests/fixtures/in_process.py`): the worker's own `Transfers` against the real Samba
share, Redis and S3 server, with the edit made by a hook right after the check answered
"as scanned"."""
from __future__ import annotations

import asyncio
import io
import time
import uuid

import pytest
from minio.error import S3Error
from pydantic import SecretStr

from services.transfer.handlers import Transfers
from shared.config.connector_model import Connector
from shared.contracts import ChangeKind, TransferJob
from shared.sync.model import synced_record, wire_version

pytestmark = pytest.mark.e2e
SYNCED = b"as synced on both sides\n"
EDIT = b"a colleague's edit in ScaiDrive, made just after the transfer's check\n"


async def synced(worker: Transfers, samba, s3, name: str) -> tuple[Connector, str, str]:
    """A two-way SMB connector whose `name` is synced: (connector, bucket, the object's etag)."""
    base = f"tw-del-{uuid.uuid4().hex[:8]}"
    samba.mkdir(base)
    samba.write_file(f"{base}/{name}", SYNCED)
    bucket = f"tw-del-{uuid.uuid4().hex[:8]}"
    s3.client().make_bucket(bucket)
    etag = s3.client().put_object(bucket, name, io.BytesIO(SYNCED), len(SYNCED)).etag
    rt = worker.rt
    c = Connector(name=base, target_share=bucket, schedule="1h", sync_mode="two_way",
                  server=f"smb://{samba.host}:{samba.port}/{samba.share}/{base}",
                  username=samba.username, password_enc=rt.box.seal(SecretStr(samba.password)))
    await rt.state.save_connector(c)
    entry = worker.sources.get(c).stat(name)
    await rt.state.put_index(c.id, name, synced_record(entry, etag=etag, synced_at=time.time(),
                                                       owner="system"))
    return c, bucket, etag


def job(c: Connector, kind: ChangeKind, path: str, etag: str, **kw) -> TransferJob:
    return TransferJob(job_id=uuid.uuid4().hex, kind=kind, path=path, target_etag=etag,
                       connector_id=c.id, run_id="run-1", **kw)


def edit_after(monkeypatch, owner, name: str, edit) -> None:
    """`edit()` runs right after `owner.name` answered."""
    real = getattr(owner, name)

    async def then_edit(*args):
        answer = await real(*args)
        await asyncio.to_thread(edit)
        return answer
    monkeypatch.setattr(owner, name, then_edit)


def content(s3, bucket: str, key: str) -> bytes | None:
    try:
        obj = s3.client().get_object(bucket, key)
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            return None
        raise
    try:
        return obj.read()
    finally:
        obj.close()
        obj.release_conn()


def put(s3, bucket: str, key: str, data: bytes) -> None:
    s3.client().put_object(bucket, key, io.BytesIO(data), len(data))


async def test_an_edit_right_after_the_check_is_not_deleted(worker, samba, s3, monkeypatch):
    c, bucket, etag = await synced(worker, samba, s3, "minutes.txt")
    samba.path(c.name).joinpath("minutes.txt").unlink()  # deleted at the file server
    edit_after(monkeypatch, worker, "_target_as_scanned",
               lambda: put(s3, bucket, "minutes.txt", EDIT))

    assert await worker._delete(c, job(c, ChangeKind.DELETED, "minutes.txt", etag)) == \
        "skipped"

    assert content(s3, bucket, "minutes.txt") == EDIT
    assert await worker.rt.state.index_record(c.id, "minutes.txt") is not None  # pushed next


async def test_with_no_edit_the_deletion_is_made(worker, samba, s3):
    c, bucket, etag = await synced(worker, samba, s3, "minutes.txt")
    samba.path(c.name).joinpath("minutes.txt").unlink()

    assert await worker._delete(c, job(c, ChangeKind.DELETED, "minutes.txt", etag)) == \
        "deleted"

    assert content(s3, bucket, "minutes.txt") is None
    assert await worker.rt.state.index_record(c.id, "minutes.txt") is None


async def test_an_edit_of_the_old_name_right_after_the_copy_is_kept(
        worker, samba, s3, monkeypatch):
    """Renamed at the file server: the object is copied to the new name; ScaiDrive's edit of
    the old name lands just after the copy. Both are kept, and the old name keeps its index
    record (the next run pushes the edit back to the file server under its old name)."""
    c, bucket, etag = await synced(worker, samba, s3, "draft.txt")
    root = samba.path(c.name)
    (root / "draft.txt").rename(root / "final.txt")
    entry = worker.sources.get(c).stat("final.txt")
    edit_after(monkeypatch, worker.moves, "_copy", lambda: put(s3, bucket, "draft.txt", EDIT))
    moved = job(c, ChangeKind.MOVED, "final.txt", etag, from_path="draft.txt",
                version=wire_version(entry))

    assert await worker.moves.in_bucket(c, moved) == "moved"

    assert content(s3, bucket, "final.txt") == SYNCED
    assert content(s3, bucket, "draft.txt") == EDIT
    state = worker.rt.state
    assert await state.index_record(c.id, "final.txt") is not None
    assert await state.index_record(c.id, "draft.txt") is not None


async def test_with_no_edit_the_old_name_is_removed(worker, samba, s3):
    c, bucket, etag = await synced(worker, samba, s3, "draft.txt")
    root = samba.path(c.name)
    (root / "draft.txt").rename(root / "final.txt")
    entry = worker.sources.get(c).stat("final.txt")
    moved = job(c, ChangeKind.MOVED, "final.txt", etag, from_path="draft.txt",
                version=wire_version(entry))

    assert await worker.moves.in_bucket(c, moved) == "moved"

    assert content(s3, bucket, "final.txt") == SYNCED
    assert content(s3, bucket, "draft.txt") is None
    assert await worker.rt.state.index_record(c.id, "draft.txt") is None
