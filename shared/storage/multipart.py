"""Multipart uploads: every upload past the part size, its completion with a condition
(If-Match / If-None-Match: *) where the caller gives one.

S3 (since 2024) and MinIO check a CompleteMultipartUpload's conditions as the object is made
(moto checks If-None-Match there): a two-way upload of a large file then replaces only the
object version the scan saw, however long its parts took. minio's `put_object` has no place
for a condition, so this is its multipart loop written out with minio's own requests
(`_create_multipart_upload`, `_upload_part`, `_abort_multipart_upload`) and a completion that
adds the condition's headers to minio's. Memory stays bounded as in minio: at most `PARALLEL`
parts in flight and one being read. Any failure (a refused condition too) aborts the upload:
nothing is left behind and the object is untouched.

A part whose upload fails for want of S3 (unreachable, a connection dropped, 5xx after the
client's own few retries: a MinIO restarting) is sent again, from the bytes it holds, for up to
PART_PATIENCE_S (a large file was read again from its first byte when its job came back; minio's
`put_object`, used before for unconditional uploads, gives up after the client's retries).

May import: minio, urllib3, tenacity, `shared.errors`.
"""
from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import BinaryIO, Protocol, cast

import urllib3.exceptions
from minio import Minio
from minio.datatypes import CompleteMultipartUploadResult
from minio.error import S3Error, ServerError
from minio.helpers import DictType, md5sum_hash, read_part_data
from minio.xml import Element, SubElement, getbytes
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from shared.errors import Transient

log = logging.getLogger(__name__)
PARALLEL = 3  # parts in flight, as minio's put_object uploads them
PART_PATIENCE_S = 90.0  # a part is sent again for this long while S3 is out of reach
_S3_UNREACHABLE = (urllib3.exceptions.HTTPError, ConnectionError, ServerError)


def s3_out_of_reach(exc: BaseException) -> bool:
    """No answer from S3, or a 5xx (a MinIO starting answers 503): not the request's fault."""
    return isinstance(exc, _S3_UNREACHABLE) or (
        isinstance(exc, S3Error) and exc.response is not None and exc.response.status >= 500)


class Readable(Protocol):
    """What an upload reads from: `read(n)` up to n bytes, b"" at the end (a source's reader,
    an open file)."""

    def read(self, size: int, /) -> bytes: ...


def upload(client: Minio, bucket: str, key: str, data: Readable, size: int, part_size: int,
           headers: DictType, condition: DictType) -> tuple[str, bool]:
    """Stream `size` bytes from `data` in parts of `part_size` and complete the upload under
    `condition`: (the object's etag, whether the server checked the condition). A server
    answering 501 to the condition completes the same parts without it (checked: False);
    a refused condition raises minio's S3Error (PreconditionFailed) after the abort."""
    upload_id = client._create_multipart_upload(bucket, key, dict(headers))
    try:
        etags = _send_parts(client, bucket, key, upload_id, data, size, part_size)
        try:
            return _complete(client, bucket, key, upload_id, etags, condition), True
        except S3Error as exc:
            if exc.response.status != 501:
                raise
        return _complete(client, bucket, key, upload_id, etags, {}), False
    except BaseException:
        client._abort_multipart_upload(bucket, key, upload_id)
        raise


def _send_parts(client: Minio, bucket: str, key: str, upload_id: str, data: Readable,
                size: int, part_size: int) -> list[str]:
    """Each part's etag, in order; a part is read only once fewer than PARALLEL are in
    flight."""
    done: dict[int, str] = {}
    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="s3-part") as pool:
        pending: dict[Future[str], int] = {}
        try:
            for number, start in enumerate(range(0, size, part_size), start=1):
                length = min(part_size, size - start)
                while len(pending) >= PARALLEL:
                    _collect(pending, done, wait(pending, return_when=FIRST_COMPLETED).done)
                part = read_part_data(cast(BinaryIO, data), length)
                if len(part) != length:
                    raise OSError(f"stream having not enough data; expected: {length}, "
                                  f"got: {len(part)}")
                pending[pool.submit(_upload_part, client, bucket, key, part, upload_id,
                                    number)] = number
            _collect(pending, done, wait(pending).done)
        finally:
            for future in pending:
                future.cancel()
    return [done[n] for n in sorted(done)]


def _upload_part(client: Minio, bucket: str, key: str, part: bytes, upload_id: str,
                 number: int) -> str:
    """minio's UploadPart, sent again while S3 is out of reach, for PART_PATIENCE_S."""
    retrying = Retrying(retry=retry_if_exception(s3_out_of_reach),
                        stop=stop_after_delay(PART_PATIENCE_S),
                        wait=wait_exponential(multiplier=0.5, max=10),
                        before_sleep=_told_again, reraise=True)
    return retrying(client._upload_part, bucket, key, part, None, upload_id, number)


def _told_again(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.info("S3 out of reach for a part upload (%s); sending the part again",
             type(exc).__name__)


def _collect(pending: dict[Future[str], int], done: dict[int, str],
             finished: set[Future[str]]) -> None:
    for future in finished:
        done[pending.pop(future)] = future.result()  # a failed part raises here


def _complete(client: Minio, bucket: str, key: str, upload_id: str, etags: list[str],
              condition: DictType) -> str:
    """minio's CompleteMultipartUpload (`Minio._complete_multipart_upload`) with `condition`'s
    headers added."""
    element = Element("CompleteMultipartUpload")
    for number, etag in enumerate(etags, start=1):
        tag = SubElement(element, "Part")
        SubElement(tag, "PartNumber", str(number))
        SubElement(tag, "ETag", '"' + etag + '"')
    body = getbytes(element)
    headers: DictType = {"Content-Type": "application/xml",
                         "Content-MD5": cast(str, md5sum_hash(body))}
    response = client._execute("POST", bucket, key, body=body, headers=headers | condition,
                               query_params={"uploadId": upload_id})
    made = CompleteMultipartUploadResult(response).etag
    if made is None:
        raise Transient(f"S3 answered no etag for {key}")
    return made
