"""The one interface every source backend implements (rclone's `Fs`, for us).

Paths are relative, '/'-separated, never starting with '/'. Calls are blocking: services run
them in threads. Failures raise the classes of `shared.errors`. The data the calls take and
return (`SourceEntry`, `Listing`, ...) is the pure core's model: `shared.sync.model`.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol

from shared.sync.model import ANY, Absent, DeltaCursor, Listing, SourceEntry, Versioned


class Reader(Protocol):
    """An open file: `entry` is the version being read (size/mtime as opened)."""

    entry: SourceEntry

    def read(self, size: int = -1) -> bytes: ...


class Source(Protocol):
    def walk(self, cursor: DeltaCursor | None = None) -> Iterator[Listing]:
        """The tree in parts (a folder at a time where the backend lists folders), so that a
        scan holds one folder's width, not the tree. Each part carries its own entries and
        failures; `complete`, `cursor` and `resynced` hold for the walk as a whole once merged
        (`merge_flags`)."""

    def list(self, cursor: DeltaCursor | None = None) -> Listing:
        """The whole tree. Per-folder errors go in `failures`; the walk goes on. A delta-capable
        backend asks only for changes since `cursor` and returns the full listing rebuilt from
        it plus `listing.cursor`; others ignore `cursor`."""

    def stat(self, path: str) -> SourceEntry: ...

    def open_read(self, path: str, size_hint: int | None = None, *,
                  expect: Versioned | None = None) -> AbstractContextManager[Reader]:
        """Open for reading without locking other users of the file out. `size_hint` (the
        listed size) lets a backend fetch a small file in one round trip; `expect` (the listed
        version) lets it use what a listing moments ago gave for that version (SharePoint's
        folder listings). `reader.entry` is always the version whose bytes are read."""

    def write(self, path: str, data: BinaryIO, size: int,
              expect: SourceEntry | Absent | None = ANY) -> SourceEntry:
        """Create or replace a file (creating parent folders); returns the new version as the
        source now holds it (SharePoint rewrites Office files: not always the bytes sent).
        `expect`: the version the file must still be (`same_content`), or ABSENT (no file
        there); otherwise ChangedAtSource and the file is left untouched."""

    def delete(self, path: str, expect: SourceEntry | None = ANY) -> None:
        """Delete a file. With `expect`, only that version (else ChangedAtSource, file kept);
        NotFound when it is already gone."""

    def owners(self, paths: Iterable[str]) -> dict[str, str | None]:
        """The owner principal (SID for SMB) of each path; None where unknown."""

    def close(self) -> None: ...
