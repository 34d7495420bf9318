"""The one interface every source backend implements (rclone's `Fs`, for us).

Paths are relative, '/'-separated, never starting with '/'. Calls are blocking: services run
them in threads. Failures raise the classes of `shared.errors`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, ContextManager, Iterable, Protocol


@dataclass(frozen=True)
class SourceEntry:
    path: str
    size: int
    mtime_ns: int
    file_id: str | None = None  # stable across renames where the backend has one
    # A content hash where the backend keeps one (SharePoint's quickXorHash): when both sides
    # have it, it (with the size) decides "unchanged", not the mtime a rename may bump.
    content_tag: str | None = None


@dataclass(frozen=True)
class ListFailure:
    """A folder or file that could not be listed; its subtree is unknown this run."""

    path: str
    cause: str
    message: str


@dataclass
class DeltaCursor:
    """Where an incremental (delta) listing resumes: the backend's saved position and the items
    it knew then, by backend id (enough to rebuild every path from parent ids). The scanner keeps
    it per connector and saves the listing's new cursor only once the run's jobs are published."""

    link: str | None = None  # None: enumerate everything
    items: dict[str, dict] = field(default_factory=dict)


@dataclass
class Listing:
    entries: dict[str, SourceEntry] = field(default_factory=dict)
    failures: list[ListFailure] = field(default_factory=list)
    # False when the walk was cut short (connection lost): nothing may be deleted on its strength.
    complete: bool = True
    cursor: DeltaCursor | None = None  # set by delta-capable backends: the position to save
    resynced: bool = False  # the saved position had expired: this is a full enumeration


class Reader(Protocol):
    """An open file: `entry` is the version being read (size/mtime as opened)."""

    entry: SourceEntry

    def read(self, size: int = -1) -> bytes: ...


class Source(Protocol):
    def list(self, cursor: DeltaCursor | None = None) -> Listing:
        """The whole tree. Per-folder errors go in `failures`; the walk goes on. A delta-capable
        backend asks only for changes since `cursor` and returns the full listing rebuilt from
        it plus `listing.cursor`; others ignore `cursor`."""

    def stat(self, path: str) -> SourceEntry: ...

    def open_read(self, path: str, size_hint: int | None = None) -> ContextManager[Reader]:
        """Open for reading without locking other users of the file out. `size_hint` (the
        listed size) lets a backend fetch a small file in one round trip."""

    def write(self, path: str, data: BinaryIO, size: int) -> SourceEntry:
        """Create or replace a file (creating parent folders); returns the new version."""

    def delete(self, path: str) -> None: ...

    def owners(self, paths: Iterable[str]) -> dict[str, str | None]:
        """The owner principal (SID for SMB) of each path; None where unknown."""

    def close(self) -> None: ...
