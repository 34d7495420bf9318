"""Two-way deletions in ScaiDrive are made only while the object is the version the scan saw
(`Storage.remove` with `expected`: DELETE with If-Match, which S3 and moto check as they
delete): an edit made in ScaiDrive between the transfer's check and its DELETE is kept. A
server answering 501 to the condition is sent plain DELETEs from then on."""
from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from minio.error import S3Error
from pydantic import SecretStr

from shared.config.settings import Settings
from shared.errors import ScaiDriveChanged
from shared.storage.s3 import Expected, Storage

BUCKET = "conditional-deletes"


@pytest.fixture(scope="module")
def storage(s3) -> Storage:
    store = Storage(Settings(s3_endpoint=s3.endpoint, s3_access_key=SecretStr(s3.access_key),
                             s3_secret_key=SecretStr(s3.secret_key),
                             secret_key=SecretStr(Fernet.generate_key().decode())))
    store.create_bucket(BUCKET)
    return store


def put(storage: Storage, key: str, data: bytes) -> str:
    return storage.put(BUCKET, key, io.BytesIO(data), len(data), {})


def test_the_version_seen_is_deleted(storage):
    seen = put(storage, "a.txt", b"as scanned")
    storage.remove(BUCKET, "a.txt", Expected(seen))
    assert storage.stat(BUCKET, "a.txt") is None


def test_an_edit_in_scaidrive_since_the_check_is_not_deleted(storage):
    seen = put(storage, "b.txt", b"as scanned")
    put(storage, "b.txt", b"a colleague's edit in ScaiDrive")  # after the check
    with pytest.raises(ScaiDriveChanged):
        storage.remove(BUCKET, "b.txt", Expected(seen))
    assert storage.stat(BUCKET, "b.txt").size == len(b"a colleague's edit in ScaiDrive")


def test_an_object_already_gone_is_deleted_as_asked(storage):
    seen = put(storage, "c.txt", b"as scanned")
    storage.remove(BUCKET, "c.txt")
    storage.remove(BUCKET, "c.txt", Expected(seen))  # a redelivered job: nothing to do
    assert storage.stat(BUCKET, "c.txt") is None


def test_a_server_without_conditional_deletes_is_sent_plain_ones(storage, monkeypatch):
    real, sent = storage.client._execute, []

    def no_conditions(method, bucket=None, key=None, body=None, headers=None, **kw):
        if method == "DELETE":
            sent.append("If-Match" in (headers or {}))
            if headers and "If-Match" in headers:  # the 501 such a server answers
                raise S3Error(_Response(501), "NotImplemented", "not implemented", key, None,
                              None)
        return real(method, bucket, key, body=body, headers=headers, **kw)

    monkeypatch.setattr(storage.client, "_execute", no_conditions)
    monkeypatch.setattr(storage, "unconditional", set())
    storage.remove(BUCKET, "d.txt", Expected(put(storage, "d.txt", b"one")))
    storage.remove(BUCKET, "e.txt", Expected(put(storage, "e.txt", b"two")))
    assert storage.stat(BUCKET, "d.txt") is None and storage.stat(BUCKET, "e.txt") is None
    assert sent == [True, False, False]  # asked once
    assert "put" not in storage.unconditional  # conditional PUTs are another matter


class _Response:
    """What minio's S3Error keeps of the HTTP response (its status)."""

    def __init__(self, status: int):
        self.status = status
