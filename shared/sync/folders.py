"""Two-way folders: which EMPTY folders travel, decided like files (part of `reconcile_two_way`).

A folder holding anything travels implicitly with its contents on both sides (S3 has no
folders); only a folder that holds nothing needs to travel as such. In ScaiDrive it is a folder
marker: a zero-byte object whose key ends in "/" (the S3 consoles' convention, and ScaiDrive's).
Folder paths here end in "/" everywhere (the index's entry, the marker's path, the decision's
steps), so they can never be mistaken for a file's path.

Each side says of a folder: "empty" (an empty folder at the source, a marker in ScaiDrive with
nothing else under it), "full" (something under it) or "absent". The index holds an entry for
a folder synced empty on both sides (`folder_record`), which tells "deleted on one side" from
"new on the other", as for files:

  not synced:  empty / absent -> a marker in ScaiDrive      absent / empty -> a folder at the source
               empty / empty  -> recorded (both hold it)
  synced:      absent / empty -> the marker deleted (only on a listing that vouches for the
                                 folder's absence: `rules.deletable`)
               empty / absent -> the folder removed at the source if it is empty there then
               absent / absent, or "full" on either side -> forgotten (it travels with its
                                 contents now; nothing is deleted)

Removals only ever take a folder that is empty at that moment (checked again by whoever
removes it), so they count toward no mass-delete hold and no side's file total.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.contracts import ChangeKind
from shared.sync.model import IndexRecord, Listing
from shared.sync.rules import Action, deletable, unreadable


def is_folder(path: str) -> bool:
    """A folder's path (an index entry, a marker, a step): it ends in "/"."""
    return path.endswith("/")


def files_only(paths: Mapping[str, object]) -> int:
    """How many of a side's paths are files (folder paths count toward no file total)."""
    return sum(1 for p in paths if not is_folder(p))


def folder_record(synced_at: float, owner: str) -> IndexRecord:
    """The index's entry for a folder synced empty on both sides: the smallest record there is
    (no size, version, etag or content tag; the connector's system owner's label)."""
    return IndexRecord(size=0, mtime_ns=0, file_id=None, owner=owner, principal=None,
                       etag=None, synced_at=synced_at)


@dataclass
class FolderPlan:
    actions: list[Action] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)  # empty on both sides: index them
    forgotten: list[str] = field(default_factory=list)  # no longer an empty folder anywhere
    withheld: list[str] = field(default_factory=list)  # the listing cannot vouch for it
    unchanged: int = 0


def _ancestors(path: str) -> list[str]:
    """Every folder ("a/", "a/b/") that holds `path` (a file or a folder)."""
    parts = path.rstrip("/").split("/")[:-1]
    return ["/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)]


def _state(folder: str, empty: set[str], holding: set[str]) -> str:
    if folder in holding:
        return "full"
    return "empty" if folder in empty else "absent"


class FolderFill:
    """Which of the folders that may travel (empty at the source, or a marker in ScaiDrive)
    hold something on each side, fed each side's paths a chunk at a time: it holds those
    folders, not the trees."""

    def __init__(self, source: Listing, markers: Iterable[str]):
        self.at_source = {f + "/" for f in source.empty_folders or ()}
        self.markers = set(markers)
        self.watched = self.at_source | self.markers
        self.full_source: set[str] = set()
        self.full_target: set[str] = set()
        self.at_sources(self.at_source)
        self.in_scaidrive(self.markers)

    def at_sources(self, paths: Iterable[str]) -> None:
        if self.watched:
            self.full_source.update(f for p in paths for f in _ancestors(p) if f in self.watched)

    def in_scaidrive(self, paths: Iterable[str]) -> None:
        if self.watched:
            self.full_target.update(f for p in paths for f in _ancestors(p) if f in self.watched)


def decide_folders(indexed: Iterable[str], source: Listing, fill: FolderFill) -> FolderPlan:
    """The folder steps of a two-way run (none where the backend does not report folders).
    `indexed`: the index's folder entries; `fill` has seen every path of both sides."""
    plan = FolderPlan()
    if source.empty_folders is None:
        return plan
    indexed = set(indexed)
    cannot_read = unreadable(source.failures)
    for folder in sorted(indexed | fill.watched):
        s = _state(folder, fill.at_source, fill.full_source)
        t = _state(folder, fill.markers, fill.full_target)
        _decide(plan, folder, folder in indexed, s, t,
                deletable(folder.rstrip("/"), source.complete, cannot_read))
    return plan


_NEW = {("empty", "absent"): ChangeKind.CREATED, ("absent", "empty"): ChangeKind.PUSHED}
_SYNCED = {("absent", "empty"): ChangeKind.DELETED,
           ("empty", "absent"): ChangeKind.DELETED_IN_SCAIDRIVE}


def _decide(plan: FolderPlan, folder: str, synced: bool, s: str, t: str,
            vouched: bool) -> None:
    if (s, t) == ("empty", "empty"):
        if synced:
            plan.unchanged += 1
        else:
            plan.recorded.append(folder)
    elif not synced:
        if (s, t) in _NEW:
            plan.actions.append(Action(_NEW[s, t], folder))
    elif (s, t) in _SYNCED:
        if s == "absent" and not vouched:
            plan.withheld.append(folder)  # never delete on a listing that missed it
        else:
            plan.actions.append(Action(_SYNCED[s, t], folder))
    else:
        plan.forgotten.append(folder)
