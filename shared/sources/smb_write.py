"""The write side of `SmbSource`: create/replace and delete, unconditional or conditional on the
version the caller based its change on (two-way sync: a concurrent edit becomes a conflict).

SMB has no compare-and-swap on content, so a conditional replace or delete stats, compares and
then acts: an edit landing in that window (one SMB round trip) is not caught. "Must not exist"
is exact: the create itself fails when a file appeared (FILE_CREATE disposition).
"""
from __future__ import annotations

import contextlib
from typing import BinaryIO

import smbclient
from smbclient._io import SMBFileIO
from smbprotocol.exceptions import SMBOSError

from shared import errors
from shared.sources.base import Absent, SourceEntry, check_expected

_NAME_COLLISION = 0xC0000035  # OBJECT_NAME_COLLISION: FILE_CREATE found something there


class SmbWriter:
    """Mixed into SmbSource: uses its `_call`, `_unc`, `_kw`, `stat` and `chunk_size`."""

    def write(self, path: str, data: BinaryIO, size: int,
              expect: SourceEntry | Absent | None = None) -> SourceEntry:
        """Replace in place (keeps the file's owner and ACL), streaming `size` bytes."""
        absent = isinstance(expect, Absent)
        if expect is not None and not absent:
            check_expected(path, self._current(path), expect)  # the race window starts here
        f = self._call(path, self._create, path, absent)
        try:  # no retry from here: `data` is being consumed
            self._call(path, self._copy_in, f, data, size, retry=False)
        finally:
            with contextlib.suppress(Exception):
                f.close()
        return self.stat(path)

    def delete(self, path: str, expect: SourceEntry | None = None) -> None:
        if expect is not None:
            check_expected(path, self.stat(path), expect)  # gone already: NotFound
        self._call(path, smbclient.remove, self._unc(path), **self._kw())

    def _current(self, path: str) -> SourceEntry | None:
        try:
            return self.stat(path)
        except errors.NotFound:  # a folder in the way counts as "not that file" too
            return None

    def _create(self, path: str, exclusive: bool = False) -> SMBFileIO:
        """Open for writing, truncating (or, `exclusive`, only if nothing is there)."""
        parent = path.rpartition("/")[0]
        if parent:
            smbclient.makedirs(self._unc(parent), exist_ok=True, **self._kw())
        f = SMBFileIO(self._unc(path), mode="x" if exclusive else "w", share_access="r",
                      **self._kw())
        try:
            f.open()
        except SMBOSError as exc:
            if exclusive and exc.ntstatus == _NAME_COLLISION:
                raise errors.ChangedAtSource("a file was created at the source meanwhile",
                                             path) from exc
            raise
        return f

    def _copy_in(self, f: SMBFileIO, data: BinaryIO, size: int) -> None:
        step = min(self.chunk_size, f.fd.connection.max_write_size)
        written = 0
        while written < size:
            chunk = memoryview(data.read(min(step, size - written)))
            if not chunk:
                raise errors.SyncError(f"input ended after {written} of {size} bytes")
            while chunk:  # a WRITE may take less than offered (credits)
                done = f.write(chunk)
                chunk, written = chunk[done:], written + done
