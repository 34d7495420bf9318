"""Racily clean files (`shared.sync.model.racily_clean`): a file whose indexed version was read
within a timestamp tick of its last write may have been written again in that tick, at the same
size, without its version showing it (Samba answers ChangeTime = mtime). Such a file comes back
as a RECHECKED job, or as a push over it; this module answers "does the source still hold the
bytes of the object the index records?" by reading them through, never whole:

- by the object's etag where ours to reproduce: one PUT's MD5, or a multipart upload's in the
  storage's part size (`shared.storage.s3.content_etags`): only the source is read;
- otherwise (an object ScaiDrive's users uploaded in other parts) against the object itself,
  a chunk of each at a time, while the object is still the version the index records;
- None where neither can tell (that object replaced meanwhile).

And the byte-for-byte comparison of two streams that the two-way comparisons share.
Imports: shared only.
"""
from __future__ import annotations

from typing import Any, Protocol

from shared.sources.base import Source
from shared.storage.s3 import Readable, Storage, content_etags
from shared.sync.model import IndexRecord, Versioned, same_content

COMPARE_CHUNK = 1024 * 1024


class Pacer(Protocol):
    """A connector's bandwidth limit on a reader (services/transfer/throttle.Pace)."""

    def reader(self, raw: Readable) -> Any: ...


def bytes_as_indexed(source: Source, path: str, expect: Versioned | None,
                     storage: Storage, bucket: str, key: str, known: IndexRecord,
                     pace: Pacer | None = None) -> bool | None:
    """In a thread: True if the source's file at `path` (which must be version `expect`)
    holds the bytes of the object `known` records, False if not, None if nothing can tell.
    The source is read at the connector's bandwidth (`pace`)."""
    if not known.etag:
        return None
    with source.open_read(path, size_hint=known.size, expect=expect) as reader:
        if not same_content(reader.entry, known):
            return False
        data = pace.reader(reader) if pace else reader
        if _ours_to_reproduce(known.etag, known.size, storage.part_size):
            return known.etag in content_etags(data, storage.part_size)
        obj = storage.open_read(bucket, key)
        if obj is None:
            return None
        try:
            if obj.headers["etag"].strip('"') != known.etag:
                return None
            return same_bytes(data, obj, known.size)
        finally:
            obj.close()
            obj.release_conn()


def _ours_to_reproduce(etag: str, size: int, part_size: int) -> bool:
    """An MD5 (one PUT, a copy), or a multipart etag of as many parts as ours would have."""
    _, dash, count = etag.partition("-")
    return not dash or count == str(-(-size // part_size))


def same_bytes(a: Readable, b: Readable, size: int) -> bool:
    """Compare two streams chunk by chunk: memory bounded whatever the file size."""
    done = 0
    while done < size:
        n = min(COMPARE_CHUNK, size - done)
        if _read_exactly(a, n) != _read_exactly(b, n):
            return False
        done += n
    return True


def _read_exactly(stream: Readable, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)
