"""Two-way uploads are written only over the object version the scan saw (`Storage.put` with
`expected`): an edit made in ScaiDrive between the transfer's check and its PUT is refused by
the S3 server (moto here, S3 and MinIO alike), not overwritten; nothing is written then, a
multipart upload's parts included. A server without conditional writes (501) is written to
without them, and once only asked."""
from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from minio.error import S3Error
from pydantic import SecretStr

from shared.config.settings import Settings
from shared.errors import ScaiDriveChanged
from shared.storage.s3 import Expected, Storage

BUCKET = "conditional"


@pytest.fixture(scope="module")
def storage(s3) -> Storage:
    store = Storage(Settings(s3_endpoint=s3.endpoint, s3_access_key=SecretStr(s3.access_key),
                             s3_secret_key=SecretStr(s3.secret_key), part_size_mb=5,
                             secret_key=SecretStr(Fernet.generate_key().decode())))
    store.create_bucket(BUCKET)
    return store


def put(storage: Storage, key: str, data: bytes, expected: Expected | None) -> str:
    return storage.put(BUCKET, key, io.BytesIO(data), len(data), {"owner": "alice"}, expected)


def content(storage: Storage, key: str) -> bytes:
    response = storage.open_read(BUCKET, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def test_a_put_over_the_version_seen_replaces_it(storage):
    seen = put(storage, "a.txt", b"as scanned", None)
    etag = put(storage, "a.txt", b"from the file server", Expected(seen))
    assert content(storage, "a.txt") == b"from the file server"
    stat = storage.stat(BUCKET, "a.txt")
    assert stat.etag == etag and stat.metadata["x-amz-meta-owner"] == "alice"


def test_an_edit_in_scaidrive_since_the_check_is_not_overwritten(storage):
    seen = put(storage, "b.txt", b"as scanned", None)
    put(storage, "b.txt", b"a colleague's edit in ScaiDrive", None)  # after the check
    with pytest.raises(ScaiDriveChanged):
        put(storage, "b.txt", b"from the file server", Expected(seen))
    assert content(storage, "b.txt") == b"a colleague's edit in ScaiDrive"


def test_a_new_file_does_not_replace_one_created_in_scaidrive_meanwhile(storage):
    put(storage, "c.txt", b"created in ScaiDrive after the scan", None)
    with pytest.raises(ScaiDriveChanged):
        put(storage, "c.txt", b"from the file server", Expected(None))
    assert content(storage, "c.txt") == b"created in ScaiDrive after the scan"
    put(storage, "d.txt", b"new", Expected(None))  # nothing there: written
    assert content(storage, "d.txt") == b"new"


def test_an_object_deleted_in_scaidrive_meanwhile_is_not_recreated(storage):
    seen = put(storage, "e.txt", b"as scanned", None)
    storage.remove(BUCKET, "e.txt")
    with pytest.raises(ScaiDriveChanged):
        put(storage, "e.txt", b"from the file server", Expected(seen))
    assert storage.stat(BUCKET, "e.txt") is None


def big(fill: int) -> bytes:
    return bytes([fill]) * (5 * 1024 * 1024 + 1)  # two parts of the 5 MiB part size


def uploads_open(storage: Storage) -> list[str]:
    return [u.object_name for u in storage.client._list_multipart_uploads(BUCKET).uploads]


def test_a_multipart_upload_over_the_version_seen_replaces_it(storage):
    seen = put(storage, "big-a.bin", b"as scanned", None)
    etag = put(storage, "big-a.bin", big(1), Expected(seen))
    stat = storage.stat(BUCKET, "big-a.bin")
    assert etag.endswith("-2") and stat.etag == etag and stat.size == len(big(1))
    assert stat.metadata["x-amz-meta-owner"] == "alice"
    assert content(storage, "big-a.bin") == big(1)


def test_a_new_large_file_does_not_replace_one_created_in_scaidrive_meanwhile(storage):
    """The completion carries If-None-Match: * (moto checks it, as S3 and MinIO do): the parts
    are sent, the server refuses to make the object, and the upload is aborted."""
    put(storage, "big-b.bin", b"created in ScaiDrive during the upload", None)
    with pytest.raises(ScaiDriveChanged):
        put(storage, "big-b.bin", big(2), Expected(None))
    assert content(storage, "big-b.bin") == b"created in ScaiDrive during the upload"
    assert "big-b.bin" not in uploads_open(storage)  # nothing left behind


def test_a_large_file_does_not_overwrite_an_edit_made_during_its_upload(storage, monkeypatch):
    """The completion carries If-Match with the version seen. moto does not check If-Match on
    a completion (S3 and MinIO do), so its answer to a changed object is S3's, given here: the
    412 it documents. The object stays as edited and the upload is aborted."""
    seen = put(storage, "big-c.bin", b"as scanned", None)
    put(storage, "big-c.bin", b"a colleague's edit in ScaiDrive", None)
    real, completions = storage.client._execute, []

    def as_s3(method, bucket=None, key=None, body=None, headers=None, query_params=None,
              **kw):
        if method == "POST" and query_params and "uploadId" in query_params:
            completions.append(dict(headers or {}))
            if headers and headers.get("If-Match") != f'"{storage.stat(BUCKET, key).etag}"':
                raise S3Error(_Response(412), "PreconditionFailed", "At least one of the "
                              "pre-conditions you specified did not hold", key, None, None)
        return real(method, bucket, key, body=body, headers=headers,
                    query_params=query_params, **kw)

    monkeypatch.setattr(storage.client, "_execute", as_s3)
    with pytest.raises(ScaiDriveChanged):
        put(storage, "big-c.bin", big(3), Expected(seen))
    assert [h.get("If-Match") for h in completions] == [f'"{seen}"']
    assert content(storage, "big-c.bin") == b"a colleague's edit in ScaiDrive"
    assert "big-c.bin" not in uploads_open(storage)


def test_a_server_without_conditional_writes_is_written_to_without_them(storage, monkeypatch):
    seen = put(storage, "f.txt", b"as scanned", None)
    sent: list[dict] = []
    real = storage.client._put_object

    def no_conditions(bucket, key, body, headers):  # the 501 such a server answers
        sent.append(dict(headers))
        if "If-Match" in headers or "If-None-Match" in headers:
            raise S3Error(_Response(501), "NotImplemented", "not implemented", key, None,
                          None)
        return real(bucket, key, body, headers)

    monkeypatch.setattr(storage.client, "_put_object", no_conditions)
    monkeypatch.setattr(storage, "unconditional", set())
    put(storage, "f.txt", b"from the file server", Expected(seen))
    put(storage, "f.txt", b"and again", Expected(None))
    assert content(storage, "f.txt") == b"and again"
    assert ["If-Match" in h for h in sent] == [True, False, False]  # asked once


class _Response:
    """What minio's S3Error keeps of the HTTP response (its status)."""

    def __init__(self, status: int):
        self.status = status
