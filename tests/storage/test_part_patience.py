"""A large upload rides out S3 going away for a moment: each part whose upload fails for want
of S3 is sent again from the bytes it holds (`multipart.PART_PATIENCE_S`), so the source's
bytes are read once and the upload completes, instead of failing after the client's own
retries (~2 s) and the file being read again from its first byte."""
from __future__ import annotations

import hashlib
import threading

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared.config.settings import Settings
from shared.messaging.outages import is_outage
from shared.storage import multipart
from shared.storage.s3 import Storage
from tests.e2e.helpers import open_uploads
from tests.fixtures.proxy import TcpProxy

BUCKET = "part-patience"
MiB = 1024 * 1024


class CutWhileRead:
    """A file of `size` bytes that cuts S3's line once `cut_at` bytes were read, for
    `down_s` seconds; it counts what was read."""

    def __init__(self, size: int, proxy: TcpProxy, cut_at: int, down_s: float):
        self.size, self.proxy, self.cut_at, self.down_s = size, proxy, cut_at, down_s
        self.read_bytes = 0
        self.digest = hashlib.sha256()

    def read(self, n: int) -> bytes:
        n = min(n, self.size - self.read_bytes)
        data = bytes([self.read_bytes // MiB % 251]) * n
        before, self.read_bytes = self.read_bytes, self.read_bytes + n
        if before < self.cut_at <= self.read_bytes:
            self.proxy.cut()
            threading.Timer(self.down_s, self.proxy.restore).start()
        self.digest.update(data)
        return data


@pytest.fixture
def via_proxy(s3):
    proxy = TcpProxy(s3.port)
    storage = Storage(Settings(s3_endpoint=f"http://127.0.0.1:{proxy.port}",
                               s3_access_key=SecretStr(s3.access_key),
                               s3_secret_key=SecretStr(s3.secret_key), part_size_mb=5,
                               secret_key=SecretStr(Fernet.generate_key().decode())))
    storage.create_bucket(BUCKET)
    try:
        yield storage, proxy
    finally:
        proxy.close()


def test_a_large_upload_waits_out_s3_gone_for_a_moment_and_reads_its_source_once(
        via_proxy, s3):
    storage, proxy = via_proxy
    source = CutWhileRead(26 * MiB + 3, proxy, cut_at=12 * MiB, down_s=5)

    etag = storage.put(BUCKET, "big.bin", source, source.size, {"owner": "alice"})

    assert source.read_bytes == source.size  # read once: no second pass over the source
    stored = s3.client().get_object(BUCKET, "big.bin")
    assert hashlib.sha256(stored.read()).digest() == source.digest.digest()
    assert etag.endswith("-6") and open_uploads(s3.client(), BUCKET) == []


def test_s3_gone_longer_than_the_patience_fails_the_upload(via_proxy, s3, monkeypatch):
    storage, proxy = via_proxy
    monkeypatch.setattr(multipart, "PART_PATIENCE_S", 2.0)
    source = CutWhileRead(16 * MiB, proxy, cut_at=6 * MiB, down_s=30)

    with pytest.raises(Exception) as info:
        storage.put(BUCKET, "gone.bin", source, source.size, {"owner": "alice"})
    assert is_outage(info.value), info.value  # the job waits for S3: not a file's failure
    proxy.restore()
    assert "gone.bin" not in [o.object_name for o in s3.client().list_objects(BUCKET)]

