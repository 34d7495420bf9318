"""What the one-way and the two-way decisions share: the change they decide (`Action`), where a
listing is strong enough to delete on (`deletable`), the one mass-delete rule
(`hold_mass_deletes`), when an empty listing is suspicious (`looks_emptied`) and what makes a
vanished file and a new one the same file moved at the source (`move_key`).

Pure: the standard library, `shared.errors` and `shared.contracts` only.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.contracts import ChangeKind
from shared.sync.model import ListFailure, Versioned

MoveKey = tuple[str | None, int, str | int]


@dataclass(frozen=True, slots=True)
class Action:
    """One change to publish. `version` is the source's version the change is about (the listed
    entry, or for a relabel the indexed record); it goes on the wire as a `FileVersion`."""

    kind: ChangeKind
    path: str
    version: Versioned | None = None
    from_path: str | None = None  # MOVED: the old path
    target_etag: str | None = None  # two-way: the ScaiDrive object's version the step expects


def under(path: str, folders: Iterable[str]) -> bool:
    """Is `path` one of `folders` or inside one ("" is the root: everything)?"""
    return any(f == "" or path == f or path.startswith(f + "/") for f in folders)


def unreadable(failures: Iterable[ListFailure]) -> list[str]:
    """The folders (and files) a listing could not read."""
    return [f.path for f in failures]


def deletable(path: str, complete: bool, unreadable_paths: list[str]) -> bool:
    """May a listing's silence about `path` delete it? Only a complete walk that read its folder
    (rclone's lesson: a folder we could not read, or a walk cut short, deletes nothing)."""
    return complete and not under(path, unreadable_paths)


def too_many_deletes(n_deletes: int, n_files: int, share: float) -> bool:
    """More than `share` of a side's files would go: an admin decides instead."""
    return n_deletes > share * max(n_files, 1)


def hold_mass_deletes(paths: list[str], n_files: int, share: float,
                      approved: frozenset[str]) -> tuple[list[str], list[str]]:
    """(deleted, held) for one side's deletions, in both modes: a run that would delete more
    than `share` of the side's `n_files` deletes none of them there, except those an admin
    approved after a run held them (they are not held again)."""
    pending = [p for p in paths if p not in approved]
    if not too_many_deletes(len(pending), n_files, share):
        return paths, []
    return [p for p in paths if p in approved], pending


def looks_emptied(complete: bool, n_listed: int, n_failed: int, n_indexed: int) -> bool:
    """A complete listing with no file and no failure where files were synced before: the
    connector is flagged `suspicious_empty` (its deletions are held by the mass-delete rule)."""
    return complete and not n_listed and not n_failed and n_indexed > 0


def move_key(v: Versioned) -> MoveKey:
    """What a file renamed at the source keeps: its file id and its content (size, and the
    content hash where the backend has one, else the mtime; never the change time, which an
    SMB rename moves on NTFS)."""
    return (v.file_id, v.size, v.content_tag or v.mtime_ns)
