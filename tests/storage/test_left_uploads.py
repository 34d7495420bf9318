"""An upload a killed worker left open, against the S3 server: the bucket holds its parts but no
object. The next upload of the same bytes goes on with the parts numbered from 1 without a gap
and of the part size (`Storage.left_upload`, S3's ListParts) and sends only the rest; leftovers
of other uploads of the key are aborted; an upload S3 no longer has is not gone on with; one
whose source failed for now is left open for the retry."""
from __future__ import annotations

import hashlib

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared import errors
from shared.config.settings import Settings
from shared.storage.s3 import Storage
from tests.e2e.helpers import open_uploads

BUCKET = "left-uploads"
MiB = 1024 * 1024
PART = 5 * MiB


def content(size: int) -> bytes:
    return hashlib.sha256(b"seed").digest() * (size // 32) + b"\x07" * (size % 32)


class Counted:
    """A source's bytes from `start` on, counting what the upload reads."""

    def __init__(self, data: bytes, start: int = 0):
        self.data, self.pos, self.read_bytes = data, start, 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        self.read_bytes += len(chunk)
        return chunk


def open_ids(s3, *keys: str) -> set[str]:
    """The uploads open for these keys (the bucket is the module's)."""
    return {u.upload_id for u in open_uploads(s3.client(), BUCKET) if u.object_name in keys}


@pytest.fixture
def storage(s3):
    store = Storage(Settings(s3_endpoint=s3.endpoint, s3_access_key=SecretStr(s3.access_key),
                             s3_secret_key=SecretStr(s3.secret_key), part_size_mb=5,
                             secret_key=SecretStr(Fernet.generate_key().decode())))
    store.create_bucket(BUCKET)
    return store


def left_by_a_killed_worker(storage: Storage, key: str, data: bytes, parts: list[int],
                            part_size: int = PART) -> str:
    """What a worker killed mid-upload leaves: the upload open, these parts in it."""
    client = storage.client
    upload_id = client._create_multipart_upload(BUCKET, key, {})
    for number in parts:
        body = data[(number - 1) * part_size:number * part_size]
        client._upload_part(BUCKET, key, body, None, upload_id, number)
    return upload_id


def test_an_upload_left_open_goes_on_with_its_parts_and_sends_only_the_rest(storage, s3):
    data = content(4 * PART + 12345)
    left = left_by_a_killed_worker(storage, "big.bin", data, [1, 2, 4])  # 3 was in flight
    other = left_by_a_killed_worker(storage, "big.bin", data, [1])  # an older worker's
    elsewhere = left_by_a_killed_worker(storage, "big.bin.tmp", data, [1])  # another object

    parts = storage.left_upload(BUCKET, "big.bin", left)

    assert parts is not None and parts.upload_id == left and len(parts.etags) == 2
    assert open_ids(s3, "big.bin", "big.bin.tmp") == {left, elsewhere}
    source = Counted(data, parts.offset(PART))
    etag = storage.put(BUCKET, "big.bin", source, len(data), {"owner": "alice"}, going_on=parts)
    assert source.read_bytes == len(data) - 2 * PART  # parts 1 and 2 were not sent again
    assert s3.client().get_object(BUCKET, "big.bin").read() == data
    assert etag.endswith("-5")
    assert open_ids(s3, "big.bin", "big.bin.tmp") == {elsewhere}
    assert other != left


def test_an_upload_s3_no_longer_has_is_begun_afresh_and_leftovers_aborted(storage, s3):
    data = content(2 * PART + 1)
    gone = left_by_a_killed_worker(storage, "gone.bin", data, [1])
    storage.client._abort_multipart_upload(BUCKET, "gone.bin", gone)
    leftover = left_by_a_killed_worker(storage, "gone.bin", data, [1, 2])

    assert storage.left_upload(BUCKET, "gone.bin", gone) is None
    assert storage.left_upload(BUCKET, "gone.bin", None) is None  # no record: nothing kept
    assert open_ids(s3, "gone.bin") == set() and leftover

    begun: list[str] = []
    source = Counted(data)
    storage.put(BUCKET, "gone.bin", source, len(data), {}, begun=begun.append)
    assert source.read_bytes == len(data) and len(begun) == 1  # the new upload was told
    assert s3.client().get_object(BUCKET, "gone.bin").read() == data
    assert open_ids(s3, "gone.bin") == set()


def test_parts_cut_another_way_are_sent_again(storage, s3):
    """Parts of another size (the part size setting changed between the workers) do not line
    up with this upload's: none is taken."""
    data = content(3 * PART)
    left = left_by_a_killed_worker(storage, "cut.bin", data, [1, 2], part_size=6 * MiB)
    parts = storage.left_upload(BUCKET, "cut.bin", left)
    assert parts is not None and parts.etags == ()
    source = Counted(data)
    storage.put(BUCKET, "cut.bin", source, len(data), {}, going_on=parts)
    assert source.read_bytes == len(data)
    assert s3.client().get_object(BUCKET, "cut.bin").read() == data


def test_an_upload_whose_every_part_was_sent_is_completed_without_reading(storage, s3):
    data = content(2 * PART)
    left = left_by_a_killed_worker(storage, "whole.bin", data, [1, 2])  # killed before complete
    parts = storage.left_upload(BUCKET, "whole.bin", left)
    assert parts is not None and parts.offset(PART) == len(data)
    source = Counted(data, len(data))
    storage.put(BUCKET, "whole.bin", source, len(data), {}, going_on=parts)
    assert source.read_bytes == 0
    assert s3.client().get_object(BUCKET, "whole.bin").read() == data
    assert open_ids(s3, "whole.bin") == set()


class FailsFor(Counted):
    """A source whose server goes away once `fail_at` bytes were read (longer than its reads
    wait: the reader's failure is `Transient`)."""

    def __init__(self, data: bytes, fail_at: int):
        super().__init__(data)
        self.fail_at = fail_at

    def read(self, n: int) -> bytes:
        if self.pos + n > self.fail_at:
            raise errors.Transient("the file server did not answer", "kept.bin")
        return super().read(n)


@pytest.mark.parametrize("kept", [True, False], ids=["ids-kept", "ids-not-kept"])
def test_a_source_failing_for_now_leaves_a_kept_upload_to_go_on_with(storage, s3, kept):
    """The transfer worker keeps its uploads' ids (`begun`): after a failure its job comes
    back from, the upload stays open and the retry sends only what S3 does not hold. A
    caller that keeps no ids has it aborted: nobody could go on with it."""
    data = content(4 * PART + 99)
    begun: list[str] = []
    with pytest.raises(errors.Transient):
        storage.put(BUCKET, "kept.bin", FailsFor(data, 3 * PART + 1), len(data), {},
                    begun=begun.append if kept else None)
    if not kept:
        assert open_ids(s3, "kept.bin") == set()
        return
    assert open_ids(s3, "kept.bin") == set(begun)
    parts = storage.left_upload(BUCKET, "kept.bin", begun[0])
    assert parts is not None and len(parts.etags) == 3
    again = Counted(data, parts.offset(PART))
    storage.put(BUCKET, "kept.bin", again, len(data), {}, going_on=parts, begun=begun.append)
    assert again.read_bytes == PART + 99 and len(begun) == 1
    assert s3.client().get_object(BUCKET, "kept.bin").read() == data
    assert open_ids(s3, "kept.bin") == set()
