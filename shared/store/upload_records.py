"""Multipart uploads a transfer worker began and did not end: what the next worker given the file
needs to go on with the parts already in the bucket instead of reading and sending them again.
A family of `Store` (`Store.uploads`).

Key layout ({ns} = SCAIDRIVE_NAMESPACE; one connector's key, tagged by it in cluster mode):

  {ns}:uploads:{cid}   hash path -> JSON of an `OpenUpload`: the object key, S3's upload id, the
                       part size, the source version whose bytes the parts hold and the object
                       metadata the upload was begun with

A record is written as the upload begins and forgotten when it ends (completed, or aborted after
a failure); one is left only by a worker that died mid-upload. Nothing here is a secret (paths,
sizes, owners' ids); the connector's deletion removes the key.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from shared.store.replies import text, text_hash
from shared.store.state import State
from shared.sync.model import SourceEntry


@dataclass(frozen=True)
class OpenUpload:
    """A multipart upload under way: of `version`'s bytes, to `key`, begun with `metadata`."""

    key: str
    upload_id: str
    part_size: int
    version: SourceEntry
    metadata: dict[str, str]

    def goes_on(self, key: str, part_size: int, version: SourceEntry,
                metadata: dict[str, str]) -> bool:
        """May an upload of `version` to `key` with these parts and metadata take this one's
        parts? Only the same bytes (the same version: file id, size, mtime, change time,
        content hash) to the same object under the same metadata, cut the same way."""
        return (self.key, self.part_size, self.version, self.metadata) == (
            key, part_size, version, metadata)


class UploadRecords:
    def __init__(self, state: State) -> None:
        self.state = state
        self.r = state.r

    async def get(self, cid: str, path: str) -> OpenUpload | None:
        raw = text(await self.r.hget(self.state.key("uploads", cid), path))
        return None if raw is None else _parsed(raw)

    async def all(self, cid: str) -> dict[str, OpenUpload]:
        """Every upload of the connector begun and not ended, by path (a few at most)."""
        raw = text_hash(await self.r.hgetall(self.state.key("uploads", cid)))
        return {path: _parsed(value) for path, value in raw.items()}

    async def put(self, cid: str, path: str, upload: OpenUpload) -> None:
        await self.r.hset(self.state.key("uploads", cid), path, json.dumps(asdict(upload)))

    async def forget(self, cid: str, path: str) -> None:
        await self.r.hdel(self.state.key("uploads", cid), path)


def _parsed(raw: str) -> OpenUpload:
    fields = json.loads(raw)
    return OpenUpload(fields["key"], fields["upload_id"], fields["part_size"],
                      SourceEntry(**fields["version"]), fields["metadata"])
