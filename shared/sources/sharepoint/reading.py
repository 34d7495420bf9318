"""Streaming a SharePoint file: its pre-authenticated download URL, read in bounded memory.

The SDK's `content.get()` would buffer the whole file; instead httpx streams
`@microsoft.graph.downloadUrl` (no Authorization header, as Graph prescribes) one chunk at a
time, pulled by the caller's thread through the session's loop. The bytes are checked against
the listed size and quickXorHash as they pass: a mismatch raises SourceChanged before the last
byte is handed out, so a consumer never completes a copy of bytes that are not the version.
A version taken from a folder listing made earlier (`listed`, folder_cache) that the download
does not match was stale, not changed during the read: that is StaleListing, a Transient, so
the job is tried again (with the item fetched afresh) instead of failing the file.
A download whose connection breaks mid-body goes on where it stopped: the same URL asked again
for the bytes from there (`Range`, answered 206 from that offset, of the version's size), its
bytes hashed on as before, so a spliced version still fails the hash at the end. A break
before the new response gave a byte is the read's failure (transient), as any break was.
A URL whose hour ran out meanwhile (401/403, `UrlRefused`) is replaced by a new one the item
gives (`renew_url`), only while the item is still the version being read (its id, size and
quickXorHash); a new version is `changed_during_read`, as a hash mismatch is.
A read started at an offset (`start_at`: an upload going on with a killed worker's parts)
reads through the bytes before it, so the hash still covers the whole file.
"""
from __future__ import annotations

import base64
import logging
import re
from collections.abc import AsyncIterator, Callable

import httpx
import quickxorhash

from shared import errors
from shared.sources.sharepoint import delta, folder_cache
from shared.sources.sharepoint.graph import GraphSession
from shared.sources.sharepoint.graph_errors import StaleListing, UrlRefused, to_sync_error
from shared.sync.model import SourceEntry

log = logging.getLogger(__name__)

CHUNK = 512 * 1024  # per hop from the loop thread; a reader holds about two
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


# A new download URL for the version `entry` (the item asked now), or None: the item is no
# longer that version.
RenewUrl = Callable[[SourceEntry], str | None]


class DownloadReader:
    """Sequential reader of one version of a file (`entry`), verified as it is read."""

    def __init__(self, graph: GraphSession, entry: SourceEntry, url: str | None,
                 quick_xor_hash: str | None, listed: bool = False,
                 renew_url: RenewUrl | None = None):
        self.entry = entry
        self._graph, self._url, self._want, self._listed = graph, url, quick_xor_hash, listed
        self._renew_url = renew_url
        self._hash = quickxorhash.quickxorhash()
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None  # set by open()
        self._received = 0
        self._resumed_at = -1  # the offset the download last went on from
        self.resumed = 0  # times it went on after a broken connection
        self._done = entry.size == 0  # nothing to fetch
        self._cur, self._pos = b"", 0

    def open(self) -> None:
        if self._done:
            return
        if not self._url:
            raise errors.SyncError("Graph gave no download URL for the file", self.entry.path)
        self._response = self._graph.run(
            self._graph.fetch("GET", self._url, self.entry.path, stream=True))
        length = self._response.headers.get("content-length")
        if length is not None and int(length) != self.entry.size:
            raise errors.SourceChanged(
                f"download is {length} bytes, the version read is {self.entry.size}",
                self.entry.path)
        self._chunks = self._response.aiter_bytes(CHUNK)

    # --- reading ------------------------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        left = self.entry.size - self._delivered
        size = left if size is None or size < 0 else min(size, left)
        parts: list[bytes] = []
        while size > 0:
            if self._pos == len(self._cur):
                self._cur, self._pos = self._next_chunk(), 0
            take = min(size, len(self._cur) - self._pos)
            parts.append(self._cur if take == len(self._cur) else
                         self._cur[self._pos:self._pos + take])
            self._pos += take
            size -= take
        if self._pos == len(self._cur):
            self._cur, self._pos = b"", 0  # free the spent chunk before the caller works
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readable(self) -> bool:
        return True

    def start_at(self, offset: int) -> None:
        """Before the first read: the bytes before `offset` are read and hashed, not handed
        out (the quickXorHash is of the whole file: it still checks the version)."""
        if self._delivered:
            raise ValueError("start_at comes before the first read")
        left = min(max(offset, 0), self.entry.size)
        while left:
            left -= len(self.read(min(left, CHUNK)))

    @property
    def _delivered(self) -> int:
        return self._received - (len(self._cur) - self._pos)

    def _next_chunk(self) -> bytes:
        while True:
            try:
                chunk = self._pull()
                break
            except httpx.TransportError as exc:  # the connection broke mid-body
                if self._received == self._resumed_at:  # the new response gave nothing
                    raise to_sync_error(exc, self.entry.path) from exc
                self._resume(exc)
            except httpx.HTTPError as exc:
                raise to_sync_error(exc, self.entry.path) from exc
        if chunk is None:
            raise self._changed(
                f"download ended after {self._received} of {self.entry.size} bytes")
        self._received += len(chunk)
        self._hash.update(chunk)
        if self._received >= self.entry.size:
            self._verify()
        return chunk

    def _pull(self) -> bytes | None:
        """The next chunk (None at the end); httpx's errors as they are."""
        chunks = self._chunks
        assert chunks is not None, "read before open()"  # a file of 0 bytes pulls nothing

        async def pull() -> bytes | None:
            return await anext(chunks, None)

        return self._graph.run(pull())

    def _resume(self, exc: httpx.TransportError) -> None:
        """Ask the URL again for the bytes from the first one not received."""
        offset, path = self._received, self.entry.path
        self._resumed_at = offset
        self._release()
        try:
            response = self._rest_from(offset)
        except UrlRefused:  # its hour is over: a new URL for the same version
            if self._renew_url is None:
                raise
            url = self._renew_url(self.entry)
            if url is None:
                raise self._changed(f"the file changed while its download waited for a new "
                                    f"URL (at byte {offset})") from None
            log.info("SharePoint download URL expired mid-read; going on with a new one")
            self._url = url
            response = self._rest_from(offset)
        self._response = response
        got = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
        if response.status_code != 206 or not got or (int(got[1]), int(got[3])) != (
                offset, self.entry.size):
            raise errors.Transient(  # the download is tried again from the start
                f"the download broke at byte {offset} ({type(exc).__name__}) and its URL "
                f"did not answer the rest (HTTP {response.status_code}, "
                f"{response.headers.get('content-range')!r})", path)
        log.info("SharePoint download broke at byte %d of %d; going on from there",
                 offset, self.entry.size)
        self.resumed += 1
        self._chunks = response.aiter_bytes(CHUNK)

    def _rest_from(self, offset: int) -> httpx.Response:
        return self._graph.run(self._graph.fetch(
            "GET", self._url or "", self.entry.path, stream=True,
            headers={"Range": f"bytes={offset}-"}))

    def _verify(self) -> None:
        """At the expected size: the stream must end here and the hash must match."""
        try:
            more = self._received > self.entry.size or self._pull() is not None
        except httpx.HTTPError as exc:
            raise to_sync_error(exc, self.entry.path) from exc
        if more:
            raise self._changed(f"download is longer than the {self.entry.size} bytes"
                                " of the version read")
        self._done = True
        got = base64.b64encode(self._hash.digest()).decode()
        if self._want and got != self._want:
            raise self._changed(
                f"content does not match the version's quickXorHash ({got} != {self._want}):"
                " the file changed while it was read")

    def _changed(self, why: str) -> errors.SyncError:
        if self._listed:
            return StaleListing(f"{why} (the version came from a folder listing made earlier:"
                                " it is read again)", self.entry.path)
        return errors.SourceChanged(why, self.entry.path)

    # --- closing ------------------------------------------------------------------------

    def close(self) -> None:
        self._cur = b""
        self._release()

    def _release(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            try:
                self._graph.run(self._graph.finish(response))
            except Exception:
                pass


def reader_of(graph: GraphSession, path: str, item: dict, listed: bool,
              renew_url: RenewUrl) -> DownloadReader:
    """The reader of the version a driveItem's JSON describes, through its download URL."""
    hashes = (item.get("file") or {}).get("hashes") or {}
    return DownloadReader(graph, delta.entry_of(path, item), folder_cache.download_url(item),
                          hashes.get("quickXorHash"), listed=listed, renew_url=renew_url)
