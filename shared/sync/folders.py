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


def _ancestors(paths: Iterable[str]) -> set[str]:
    """Every folder ("a/", "a/b/") that holds something of `paths` (files or folders)."""
    out: set[str] = set()
    for path in paths:
        parts = path.rstrip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]) + "/")
    return out


def _state(folder: str, empty: set[str], holding: set[str]) -> str:
    if folder in holding:
        return "full"
    return "empty" if folder in empty else "absent"


def decide_folders(index: Mapping[str, IndexRecord], source: Listing,
                   target: Mapping[str, str]) -> FolderPlan:
    """The folder steps of a two-way run (none where the backend does not report folders)."""
    plan = FolderPlan()
    if source.empty_folders is None:
        return plan
    at_source = {f + "/" for f in source.empty_folders}
    markers = {p for p in target if is_folder(p)}
    full_source = _ancestors([*source.entries, *at_source])
    full_target = _ancestors(target)
    cannot_read = unreadable(source.failures)
    for folder in sorted({p for p in index if is_folder(p)} | at_source | markers):
        s = _state(folder, at_source, full_source)
        t = _state(folder, markers, full_target)
        _decide(plan, folder, folder in index, s, t,
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
