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

An upload a killed worker left open can be gone on with (`PartsSent`, from `sent_parts`: its
parts 1..n of the part size, as S3's ListParts gives them): the caller hands in the bytes from
n x part size on, and only the rest is sent. `begun` is told a new upload's id before its first
part, so that the caller can keep it where the next worker looks; such an upload is left open
after a failure the job is tried again from (S3 out of reach longer than the patience, the
source failing for now): the retry goes on with its parts.

May import: minio, urllib3, tenacity, `shared.errors`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PartsSent:
    """An open upload and its parts 1..n already in the bucket, each of the part size (their
    etags, in order): an upload going on with them sends bytes from n x part size on."""

    upload_id: str
    etags: tuple[str, ...]

    def offset(self, part_size: int) -> int:
        return len(self.etags) * part_size


def sent_parts(client: Minio, bucket: str, key: str, upload_id: str,
               part_size: int) -> PartsSent | None:
    """The parts of `upload_id` an upload may go on with: those numbered from 1 on without a
    gap and each of `part_size` bytes (a part cut another way, or the short last one, is sent
    again). None when S3 no longer has the upload (completed or aborted)."""
    etags: list[str] = []
    marker: str | None = None
    try:
        while True:
            listed = client._list_parts(bucket, key, upload_id, part_number_marker=marker)
            for part in listed.parts:
                if part.part_number != len(etags) + 1 or part.size != part_size or \
                        not part.etag:
                    return PartsSent(upload_id, tuple(etags))
                etags.append(part.etag.strip('"'))
            if not listed.is_truncated:
                return PartsSent(upload_id, tuple(etags))
            marker = listed.next_part_number_marker
    except S3Error as exc:
        if exc.code == "NoSuchUpload":
            return None
        raise


class Readable(Protocol):
    """What an upload reads from: `read(n)` up to n bytes, b"" at the end (a source's reader,
    an open file)."""

    def read(self, size: int, /) -> bytes: ...


def upload(client: Minio, bucket: str, key: str, data: Readable, size: int, part_size: int,
           headers: DictType, condition: DictType, *, going_on: PartsSent | None = None,
           begun: Callable[[str], None] | None = None) -> tuple[str, bool]:
    """Stream `size` bytes from `data` in parts of `part_size` and complete the upload under
    `condition`: (the object's etag, whether the server checked the condition). A server
    answering 501 to the condition completes the same parts without it (checked: False);
    a refused condition raises minio's S3Error (PreconditionFailed) after the abort.
    `going_on`: the upload and parts to go on with (`data` then starts at its offset); else a
    new upload, whose id `begun` is given before a part is sent. A caller that keeps the ids it
    is given (`begun`) has the upload left open after a failure its retry comes back from
    (`left_for_the_retry`); any other failure aborts it."""
    if going_on is not None:
        upload_id, etags = going_on.upload_id, list(going_on.etags)
    else:
        upload_id, etags = client._create_multipart_upload(bucket, key, dict(headers)), []
    try:
        if begun is not None and going_on is None:
            begun(upload_id)
        etags += _send_parts(client, bucket, key, upload_id, data, size, part_size, len(etags))
        try:
            return _complete(client, bucket, key, upload_id, etags, condition), True
        except S3Error as exc:
            if exc.response.status != 501:
                raise
        return _complete(client, bucket, key, upload_id, etags, {}), False
    except BaseException as exc:
        if begun is None or not left_for_the_retry(exc):
            client._abort_multipart_upload(bucket, key, upload_id)
        raise


def left_for_the_retry(exc: BaseException) -> bool:
    """A failure after which the upload's parts stay worth going on with: S3 out of reach
    past the patience, or the source failing for now (`Transient`: its server gone a while).
    The job is tried again later, and the file's version checked again then."""
    return s3_out_of_reach(exc) or isinstance(exc, Transient)


def _send_parts(client: Minio, bucket: str, key: str, upload_id: str, data: Readable,
                size: int, part_size: int, sent: int = 0) -> list[str]:
    """The etag of each part after the first `sent`, in order; a part is read only once fewer
    than PARALLEL are in flight."""
    done: dict[int, str] = {}
    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="s3-part") as pool:
        pending: dict[Future[str], int] = {}
        try:
            for number, start in enumerate(range(sent * part_size, size, part_size),
                                           start=sent + 1):
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
