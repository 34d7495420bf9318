"""The sync decision: previous index + source listing + target listing -> actions.

Pure and synchronous: no I/O, so every case is a table row in tests/unit/test_reconcile.py.
Deletions are only ever decided from a listing that is complete for the path in question:
a folder we could not read, or a walk cut short, deletes nothing (rclone's lesson).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from shared.contracts import ChangeKind, FileVersion
# same_content is also imported from here
from shared.sync.model import Listing, SourceEntry, Versioned, same_content


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """What we last stored in the bucket for a path, and the source version it came from."""

    size: int
    mtime_ns: int
    file_id: str | None = None
    content_tag: str | None = None


@dataclass(frozen=True)
class Action:
    kind: ChangeKind
    path: str
    version: FileVersion | None = None
    from_path: str | None = None
    target_etag: str | None = None  # two-way: the ScaiDrive object's version the step expects


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    unchanged: int = 0
    deletes_withheld: list[str] = field(default_factory=list)
    deletes_held: list[str] = field(default_factory=list)  # too many: waiting for an admin

    def of(self, kind: ChangeKind) -> list[Action]:
        return [a for a in self.actions if a.kind is kind]


def version_of(entry: SourceEntry) -> FileVersion:
    return FileVersion(size=entry.size, mtime_ns=entry.mtime_ns, file_id=entry.file_id,
                       content_tag=entry.content_tag)


def _move_key(e: Versioned) -> tuple:
    return (e.file_id, e.size, e.content_tag or e.mtime_ns)


def _under(path: str, folders: list[str]) -> bool:
    return any(f == "" or path == f or path.startswith(f + "/") for f in folders)


def too_many_deletes(n_deletes: int, n_files: int, share: float) -> bool:
    """More than `share` of a side's files would go: an admin decides instead (both modes)."""
    return n_deletes > share * max(n_files, 1)


def reconcile(
    index: Mapping[str, Versioned],
    listing: Listing,
    target: Mapping[str, int] | None = None,
    max_delete_share: float = 1.0,
    approved_deletes: frozenset[str] = frozenset(),
) -> Plan:
    """Decide what to transfer. `index` holds IndexEntry or anything with its four fields (the
    scanner passes the index records themselves: no copy per file). `target` maps path -> object
    size in the bucket (None: unknown).
    Deletions beyond `max_delete_share` of the indexed files are held (`deletes_held`), except
    those an admin approved. The whole tree at once; a streaming scan calls the same parts,
    `decide_listed` chunk by chunk and `decide_gone` at the end."""
    plan = Plan()
    unreadable = [f.path for f in listing.failures]
    gone = {p: e for p, e in index.items() if p not in listing.entries}
    movable = move_candidates(gone, unreadable) if listing.complete else {}
    entries = [listing.entries[p] for p in sorted(listing.entries)]
    plan.actions, plan.unchanged = decide_listed(entries, index, target, movable)
    for action in plan.of(ChangeKind.MOVED):
        gone.pop(action.from_path)
    deletes, plan.deletes_withheld = decide_gone(sorted(gone), unreadable, listing.complete)
    plan.actions += deletes
    return hold_mass_deletes(plan, len(index), max_delete_share, approved_deletes)


def decide_listed(entries: Iterable[SourceEntry], index: Mapping[str, Versioned],
                  target: Mapping[str, int] | None, movable: dict) -> tuple[list[Action], int]:
    """(actions, unchanged count) for listed files: any part of the tree, with the index records
    and bucket sizes of those paths (and of the move candidates' old paths). A move takes its
    candidate out of `movable`."""
    actions: list[Action] = []
    unchanged = 0
    for entry in entries:
        path = entry.path
        known = index.get(path)
        if known is not None and same_content(entry, known):
            if target is not None and target.get(path) != known.size:
                actions.append(Action(ChangeKind.REPAIRED, path, version_of(entry)))
            else:
                unchanged += 1
        elif known is not None:
            actions.append(Action(ChangeKind.MODIFIED, path, version_of(entry)))
        else:
            old = movable.pop(_move_key(entry), None)
            if old is not None and (target is None or target.get(old) == entry.size):
                actions.append(Action(ChangeKind.MOVED, path, version_of(entry), from_path=old))
            else:
                actions.append(Action(ChangeKind.CREATED, path, version_of(entry)))
    return actions, unchanged


def decide_gone(gone: Iterable[str], unreadable: list[str],
                complete: bool) -> tuple[list[Action], list[str]]:
    """(deletions, withheld paths) for indexed paths no longer listed and not moved: only a
    complete listing that could read the path's folder deletes it."""
    deletes: list[Action] = []
    withheld: list[str] = []
    for path in gone:
        if complete and not _under(path, unreadable):
            deletes.append(Action(ChangeKind.DELETED, path))
        else:
            withheld.append(path)
    return deletes, withheld


def hold_mass_deletes(plan: Plan, n_indexed: int, share: float,
                       approved: frozenset[str]) -> Plan:
    deletes = {a.path for a in plan.of(ChangeKind.DELETED) if a.path not in approved}
    if too_many_deletes(len(deletes), n_indexed, share):
        plan.actions[:] = [a for a in plan.actions
                           if not (a.kind is ChangeKind.DELETED and a.path in deletes)]
        plan.deletes_held = sorted(deletes)
    return plan


def move_candidates(gone: Mapping[str, Versioned], unreadable: list[str]) -> dict:
    """Vanished files that can be matched by file id (and unchanged content) at a new path."""
    out: dict = {}
    for path, known in gone.items():
        if known.file_id and not _under(path, unreadable):
            out.setdefault(_move_key(known), path)
    return out
