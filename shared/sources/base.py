"""The one interface every source backend implements (rclone's `Fs`, for us).

Paths are relative, '/'-separated, never starting with '/'. Calls are blocking: services run
them in threads. Failures raise the classes of `shared.errors`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, ContextManager, Iterable, Iterator, Protocol

from shared import errors


@dataclass(frozen=True, slots=True)  # slots: a scan holds one per file of the tree
class SourceEntry:
    path: str
    size: int
    mtime_ns: int
    file_id: str | None = None  # stable across renames where the backend has one
    # A content hash where the backend keeps one (SharePoint's quickXorHash): when both sides
    # have it, it (with the size) decides "unchanged", not the mtime a rename may bump.
    content_tag: str | None = None


class Versioned(Protocol):
    """What `same_content` compares: a SourceEntry, or the index's record of one."""

    size: int
    mtime_ns: int
    file_id: str | None
    content_tag: str | None


def same_content(entry: Versioned, known: Versioned) -> bool:
    """Unchanged? A content hash on both sides decides (a SharePoint rename bumps the mtime but
    not the bytes); otherwise size and mtime, with file ids that must agree where both exist."""
    ids_agree = entry.file_id is None or known.file_id is None or entry.file_id == known.file_id
    if entry.content_tag and known.content_tag:
        return entry.size == known.size and entry.content_tag == known.content_tag and ids_agree
    return entry.size == known.size and entry.mtime_ns == known.mtime_ns and ids_agree


class Absent:
    """Type of `ABSENT`: a conditional write's "the path must not exist" (new in ScaiDrive)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent()
ANY = None  # unconditional: write/delete whatever is there


def check_expected(path: str, current: SourceEntry | None,
                   expect: SourceEntry | Absent | None) -> None:
    """Raise ChangedAtSource unless the source's `current` version (None: no file) is `expect`."""
    if expect is None:
        return
    if isinstance(expect, Absent):
        if current is not None:
            raise errors.ChangedAtSource("a file was created at the source meanwhile", path)
    elif current is None:
        raise errors.ChangedAtSource("the file was deleted at the source meanwhile", path)
    elif not same_content(current, expect):
        raise errors.ChangedAtSource("the file was changed at the source meanwhile", path)


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


def gather(parts: Iterable[Listing]) -> Listing:
    """One Listing from a walk's parts (what `Source.list` returns)."""
    whole = Listing()
    for part in parts:
        whole.entries.update(part.entries)
        merge_flags(whole, part)
    return whole


def merge_flags(whole: Listing, part: Listing) -> None:
    """Everything of a part but its entries: failures, completeness, the delta position."""
    whole.failures.extend(part.failures)
    whole.complete = whole.complete and part.complete
    whole.cursor = part.cursor if part.cursor is not None else whole.cursor
    whole.resynced = whole.resynced or part.resynced


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

    def open_read(self, path: str, size_hint: int | None = None) -> ContextManager[Reader]:
        """Open for reading without locking other users of the file out. `size_hint` (the
        listed size) lets a backend fetch a small file in one round trip."""

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
