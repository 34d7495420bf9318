"""The data a listing produces and sync decisions read: a file's version at the source
(`SourceEntry`), how two versions compare (`same_content`), what a walk found (`Listing`, its
failures and delta position), and the conditions a conditional write is made on (`ABSENT`,
`check_expected`).

Pure: the standard library and `shared.errors` only (backends and the pure core import it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol

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
