"""ScaiDrive storage: one share = one S3 bucket (MinIO in production, any S3 API in tests).

The minio client is synchronous (urllib3): callers run these methods in threads. A file past
the part size is uploaded in parts by `multipart` (each part sent again while S3 is out of
reach), one at most that size in one PUT (minio's `put_object`). An upload a killed worker left
open is gone on with where it holds the same bytes (`left_upload`), else aborted. A scan's
listing of a bucket reads each key's size and etag only (`bucket_listing`).

Conditional writes (`put` and `remove` with `expected`): the PUT, a multipart upload's
completion (`multipart`) or the DELETE carries If-Match (the object is still that version) or,
for a write, If-None-Match: * (there is still no object), which S3 (since 2024), MinIO and moto
check as they write (moto: not If-Match on a completion): an edit made in ScaiDrive after the
caller's own check and before the request lands is refused (ScaiDriveChanged), not overwritten
or deleted. minio's `put_object` and `remove_object` send no such header: the single PUT is
minio's own `_put_object` with the headers `put_object` would build, the DELETE minio's
`_execute`. A server that answers 501 to a condition on one kind of request is sent that kind
without conditions from then on (the caller's check stays; logged once).
"""
from __future__ import annotations

import hashlib
import io
import logging
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.helpers import DictType, ObjectWriteResult, genheaders, read_part_data

from shared.config.settings import Settings
from shared.errors import ScaiDriveChanged, Transient
from shared.storage import multipart
from shared.storage.bucket_listing import ListedObject, listed_objects
from shared.storage.multipart import PartsSent, Readable

__all__ = ["Expected", "PartsSent", "Readable", "Storage", "content_etags"]

log = logging.getLogger(__name__)
_ABSENT = ("NoSuchKey", "NoSuchObject", "NotFound")


@dataclass(frozen=True)
class Expected:
    """What a write expects to replace: the object's version `etag`, or None for no object."""

    etag: str | None

    def headers(self) -> DictType:
        if self.etag is None:
            return {"If-None-Match": "*"}
        return {"If-Match": '"' + self.etag.strip('"') + '"'}


def _etag(result: ObjectWriteResult) -> str:
    """The etag of the object written. S3 answers one to every PUT, copy and completed
    multipart upload, though minio types it as optional."""
    if result.etag is None:
        raise Transient(f"S3 answered no etag for {result.object_name}")
    return result.etag


def content_etags(data: Readable, part_size: int) -> frozenset[str]:
    """The etags `Storage.put` leaves on these bytes: one PUT's (their MD5) and, past
    `part_size`, a multipart upload's in parts of `part_size` (the MD5 of the parts' MD5s and
    "-N"), as S3 and MinIO make them (an encrypting bucket's are neither: no match, so the file
    is sent again). Read a MiB at a time: memory stays bounded."""
    whole, part, parts, in_part = hashlib.md5(), hashlib.md5(), [], 0
    while chunk := data.read(min(1024 * 1024, part_size - in_part)):
        whole.update(chunk)
        part.update(chunk)
        in_part += len(chunk)
        if in_part == part_size:
            parts.append(part.digest())
            part, in_part = hashlib.md5(), 0
    if in_part or not parts:
        parts.append(part.digest())
    etags = {whole.hexdigest()}
    if len(parts) > 1:
        etags.add(f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}")
    return frozenset(etags)


def _object_headers(metadata: dict) -> DictType:
    """The headers minio's `put_object` sends with an object's metadata."""
    headers = genheaders(metadata, None, None, None, False)
    headers["Content-Type"] = "application/octet-stream"
    return headers


def _raise_if_changed(exc: S3Error, expected: Expected, key: str) -> None:
    """ScaiDriveChanged where `exc` is the server refusing `expected`'s condition: another
    version there (412), or none where one was expected."""
    if exc.code == "PreconditionFailed" or (expected.etag is not None and exc.code in _ABSENT):
        raise ScaiDriveChanged(key) from exc


class Storage:
    def __init__(self, settings: Settings, pool_size: int = 16):
        url = urllib.parse.urlsplit(settings.s3_endpoint)
        http = urllib3.PoolManager(
            maxsize=pool_size, retries=urllib3.Retry(total=3, backoff_factor=0.3,
                                                     status_forcelist=(500, 502, 503, 504)),
            timeout=urllib3.Timeout(connect=10, read=120))
        self.client = Minio(url.netloc, access_key=settings.s3_access_key.get_secret_value(),
                            secret_key=settings.s3_secret_key.get_secret_value(),
                            secure=url.scheme == "https", region=settings.s3_region,
                            http_client=http)
        self.part_size = settings.part_size_mb * 1024 * 1024
        self.unconditional: set[str] = set()  # requests the server answered 501 to conditions

    def create_bucket(self, bucket: str) -> None:
        if not self.client.bucket_exists(bucket):
            self.client.make_bucket(bucket)

    def remove_bucket(self, bucket: str) -> None:
        """Delete every object (and open multipart upload) and then the bucket."""
        if not self.client.bucket_exists(bucket):
            return
        self.abort_uploads(bucket, "")
        names = (DeleteObject(o.object_name) for o in
                 self.client.list_objects(bucket, recursive=True))
        errors = list(self.client.remove_objects(bucket, names))
        if errors:
            raise Transient(f"could not delete {len(errors)} objects: {errors[0]}")
        self.client.remove_bucket(bucket)

    def object_sizes(self, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under `prefix`, as the listing's pages arrive."""
        return ((o.key, o.size) for o in self._objects(bucket, prefix))

    def object_etags(self, bucket: str, prefix: str) -> Iterator[tuple[str, str]]:
        """(key, etag) of every object under `prefix`, as the listing's pages arrive: the
        version a two-way scan compares (folder markers, keys ending in "/", included: the
        two-way scan tells them apart)."""
        return ((o.key, o.etag) for o in self._objects(bucket, prefix))

    def _objects(self, bucket: str, prefix: str) -> Iterator[ListedObject]:
        return listed_objects(self.client, bucket, prefix + "/" if prefix else None)

    def stat(self, bucket: str, key: str):
        """The object's metadata (etag, size, last_modified, metadata); None if absent."""
        try:
            return self.client.stat_object(bucket, key)
        except S3Error as exc:
            if exc.code in _ABSENT:
                return None
            raise

    def open_read(self, bucket: str, key: str):
        """A streaming response (read(n), then close() and release_conn()): never the whole
        object in memory. Its headers carry the etag and size (no separate stat). None if
        the object is absent."""
        try:
            return self.client.get_object(bucket, key)
        except S3Error as exc:
            if exc.code in _ABSENT:
                return None
            raise

    def put(self, bucket: str, key: str, data: Readable, size: int, metadata: dict,
            expected: Expected | None = None, *, going_on: PartsSent | None = None,
            begun: Callable[[str], None] | None = None) -> str:
        """Stream `size` bytes from `data`; multipart above the part size, memory bounded by
        (parallel parts + 1) x part size. A failed multipart upload is aborted (unless its
        id went to `begun` and its job comes back: `multipart.left_for_the_retry`).
        `expected`: write only over that version (ScaiDriveChanged, nothing written,
        otherwise), where the server checks conditions. Above the part size, `going_on`: an
        upload's parts to go on with (`data` starts at its offset; `left_upload`); `begun`:
        told a new upload's id before its first part."""
        if expected is not None:
            if size <= self.part_size and "put" not in self.unconditional:
                return self._put_if(bucket, key, data, size, metadata, expected)
            if size > self.part_size and "complete" not in self.unconditional:
                return self._upload_if(bucket, key, data, size, metadata, expected,
                                       going_on, begun)
        if size > self.part_size:  # parts sent again while S3 is out of reach (multipart)
            return multipart.upload(self.client, bucket, key, data, size, self.part_size,
                                    _object_headers(metadata), {}, going_on=going_on,
                                    begun=begun)[0]
        # minio only ever calls data.read(n) (minio.helpers.read_part_data), though it types
        # the argument as a whole BinaryIO.
        result = self.client.put_object(bucket, key, cast(BinaryIO, data), size,
                                        metadata=metadata, part_size=self.part_size)
        return _etag(result)

    def _put_if(self, bucket: str, key: str, data: Readable, size: int, metadata: dict,
                expected: Expected) -> str:
        """One PUT with `expected`'s condition; the body read whole first, as minio reads a
        single part (at most the part size)."""
        body = read_part_data(cast(BinaryIO, data), size)
        if len(body) != size:
            raise OSError(f"stream having not enough data; expected: {size}, got: {len(body)}")
        headers = _object_headers(metadata)
        try:
            return _etag(self.client._put_object(bucket, key, body,
                                                 headers | expected.headers()))
        except S3Error as exc:
            if not self._conditions_refused(exc, expected, key, "put"):
                raise
        return _etag(self.client._put_object(bucket, key, body, headers))

    def _upload_if(self, bucket: str, key: str, data: Readable, size: int, metadata: dict,
                   expected: Expected, going_on: PartsSent | None,
                   begun: Callable[[str], None] | None) -> str:
        """A multipart upload completed under `expected`'s condition (`multipart.upload`)."""
        try:
            etag, checked = multipart.upload(self.client, bucket, key, data, size,
                                             self.part_size, _object_headers(metadata),
                                             expected.headers(), going_on=going_on,
                                             begun=begun)
        except S3Error as exc:
            _raise_if_changed(exc, expected, key)
            raise
        if not checked:
            self._refused("complete")
        return etag

    def _conditions_refused(self, exc: S3Error, expected: Expected, key: str,
                            request: str) -> bool:
        """ScaiDriveChanged for a refused condition; True when the server answered 501 (it
        checks no conditions on `request`: sent without them from now on)."""
        _raise_if_changed(exc, expected, key)
        if exc.response.status != 501:
            return False
        self._refused(request)
        return True

    def _refused(self, request: str) -> None:
        self.unconditional.add(request)
        log.warning("S3 server checks no conditions on %s requests: sending them without",
                    request)

    def copy(self, bucket: str, src: str, dst: str, metadata: dict) -> str:
        """Server-side copy (a rename at the source moves no bytes)."""
        result = self.client.copy_object(bucket, dst, CopySource(bucket, src),
                                         metadata=metadata, metadata_directive=REPLACE)
        return _etag(result)

    def copy_if(self, bucket: str, src: str, dst: str, metadata: dict, etag: str) -> str | None:
        """`copy`, only while the source object is version `etag` (x-amz-copy-source-if-match:
        S3 and MinIO check it, moto does not): the copy's etag, or None when the source object
        is another version or gone (nothing copied)."""
        try:
            result = self.client.copy_object(bucket, dst, CopySource(bucket, src, match_etag=etag),
                                             metadata=metadata, metadata_directive=REPLACE)
        except S3Error as exc:
            if exc.code == "PreconditionFailed" or exc.code in _ABSENT:
                return None
            raise
        return _etag(result)

    def remove(self, bucket: str, key: str, expected: Expected | None = None) -> None:
        """Delete the object; with `expected` (a version), only while it is that version
        (ScaiDriveChanged, nothing deleted, otherwise; already gone: nothing to do)."""
        if expected is None or expected.etag is None or "delete" in self.unconditional:
            self.client.remove_object(bucket, key)
            return
        try:
            self.client._execute("DELETE", bucket, key, headers=expected.headers())
            return
        except S3Error as exc:
            if exc.code in _ABSENT:
                return  # deleted meanwhile: as asked
            if not self._conditions_refused(exc, expected, key, "delete"):
                raise
        self.client.remove_object(bucket, key)

    def put_marker(self, bucket: str, key: str) -> str:
        """A folder marker (two-way: an empty folder): a zero-byte object whose key ends in
        "/", as S3 consoles and ScaiDrive make them."""
        return self.put(bucket, key, io.BytesIO(b""), 0, {})

    def holds_under(self, bucket: str, key: str) -> bool:
        """Is there any object under the folder marker `key` ("a/b/") besides the marker?"""
        return any(o.object_name != key for o in
                   self.client.list_objects(bucket, prefix=key, recursive=True))

    def left_upload(self, bucket: str, key: str, upload_id: str | None) -> PartsSent | None:
        """Before a large upload to `key`: the parts of `upload_id` (begun by a worker that
        died, of the same bytes) to go on with, or None (S3 no longer has it, or no id);
        every other upload of `key` left open (by killed workers) is aborted."""
        if not self.abort_uploads(bucket, key, keep=upload_id) or upload_id is None:
            return None
        return multipart.sent_parts(self.client, bucket, key, upload_id, self.part_size)

    def abort_uploads(self, bucket: str, key: str, keep: str | None = None) -> bool:
        """Abort the multipart uploads left open for `key` ("": every key of the bucket) by
        killed workers, but the upload `keep`: whether it is still open."""
        kept = False
        for upload in self.client._list_multipart_uploads(bucket, prefix=key or None).uploads:
            if upload.upload_id is None or (key and upload.object_name != key):
                continue
            if upload.upload_id == keep:
                kept = True
            else:
                self.client._abort_multipart_upload(bucket, upload.object_name, upload.upload_id)
        return kept
