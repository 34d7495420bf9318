"""The etags a recheck computes from a source's bytes (`content_etags`) are the ones the real S3
server (moto) gives those bytes when `Storage.put` writes them: one PUT and a multipart upload
in the storage's part size, so a racily clean file with unchanged bytes is not sent again.
Other bytes of the same size match neither."""
from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared.config.settings import Settings
from shared.storage.s3 import Storage, content_etags

MB = 1024 * 1024


@pytest.fixture(scope="module")
def storage(s3) -> Storage:
    store = Storage(Settings(s3_endpoint=s3.endpoint, s3_access_key=SecretStr(s3.access_key),
                             s3_secret_key=SecretStr(s3.secret_key), part_size_mb=5,
                             secret_key=SecretStr(Fernet.generate_key().decode())))
    store.create_bucket("etags")
    return store


@pytest.mark.parametrize("size", [0, 1, 5 * MB, 5 * MB + 1, 12 * MB + 7])
def test_the_etag_of_a_put_is_computed_from_its_bytes(storage, size):
    data = bytes(i % 251 for i in range(size))
    etag = storage.put("etags", f"f{size}", io.BytesIO(data), size, {})
    assert etag in content_etags(io.BytesIO(data), storage.part_size)
    if size:
        other = bytes([data[0] ^ 1]) + data[1:]
        assert etag not in content_etags(io.BytesIO(other), storage.part_size)
    assert ("-" in etag) is (size > storage.part_size)  # both kinds were made
