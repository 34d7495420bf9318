"""An upload session's bytes sent to Graph: fixed-size chunks (multiples of 320 KiB, each under
60 MiB), PUT in order to the session's pre-authenticated URL without Authorization, each
`Content-Range` checked against the range Graph still expects. Nothing is committed unless
every byte arrived; the last PUT answers with the driveItem. One chunk in memory at a time."""
from __future__ import annotations

from shared import errors
from shared.sources.base import ByteStream
from shared.sources.sharepoint.graph import GraphSession
from shared.sources.sharepoint.graph_errors import http_error

UPLOAD_UNIT = 327_680  # Graph: chunks are multiples of 320 KiB, each < 60 MiB
UPLOAD_CHUNK = 16 * UPLOAD_UNIT  # 5 MiB in memory per write


def send_chunks(graph: GraphSession, path: str, url: str, data: ByteStream, size: int) -> dict:
    """Sequential ranged PUTs; the last answers with the driveItem (its JSON)."""
    offset, response = 0, None
    while offset < size:
        chunk = _read_exactly(data, min(UPLOAD_CHUNK, size - offset), path, offset, size)
        headers = {"Content-Range": f"bytes {offset}-{offset + len(chunk) - 1}/{size}"}
        response = graph.run(graph.fetch("PUT", url, path, content=chunk, headers=headers))
        offset += len(chunk)
        if response.status_code == 202 and _next_expected(response) not in (None, offset):
            raise errors.Transient(f"upload out of step: Graph expects byte "
                                   f"{_next_expected(response)}, we are at {offset}", path)
    if response is None or response.status_code not in (200, 201):
        raise http_error(response, path) if response is not None else \
            errors.SyncError("upload ended without a file", path)
    return response.json()


def _read_exactly(data: ByteStream, n: int, path: str, offset: int, size: int) -> bytes:
    parts, got = [], 0
    while got < n:
        part = data.read(n - got)
        if not part:
            raise errors.SyncError(f"input ended after {offset + got} of {size} bytes", path)
        parts.append(part)
        got += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _next_expected(response) -> int | None:
    """The first byte an upload session still wants (its nextExpectedRanges, "start-end")."""
    try:
        return int(response.json()["nextExpectedRanges"][0].split("-")[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
