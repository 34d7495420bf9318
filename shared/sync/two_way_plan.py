"""What the two-way decision (`shared.sync.two_way`) is made of: its steps, the table that gives
one path's step from what each side did since the last sync, the plan it returns, and the
action each step publishes. Pure: the standard library and the pure core only.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from shared.contracts import ChangeKind
from shared.errors import SyncError
from shared.sync.model import IndexRecord, SourceEntry
from shared.sync.rules import Action


class Step(StrEnum):
    PULL = "pull"  # source -> target
    PUSH = "push"  # target -> source
    DELETE_TARGET = "delete_target"
    DELETE_SOURCE = "delete_source"
    FORGET = "forget"  # gone on both sides: drop the index entry
    RECORD = "record"  # an empty folder on both sides, not indexed yet: index it
    BOTH_CHANGED = "both_changed"  # compare contents: record if identical, else a conflict
    MOVE_TARGET = "move_target"  # renamed at the source: the object moves in ScaiDrive
    MOVE_SOURCE = "move_source"  # renamed in ScaiDrive: the file is renamed at the source
    RECHECK = "recheck"  # unchanged on both sides, the source's read racy: compare its bytes


# Raises SyncError if the source cannot hold a name written back to it (its backend's rules).
NameCheck = Callable[[str], object]


def any_name(path: str) -> None:
    return None


@dataclass
class TwoWayPlan:
    steps: list[tuple[Step, str]] = field(default_factory=list)
    unchanged: int = 0
    held_for_conflict: list[str] = field(default_factory=list)
    deletes_held: list[tuple[Step, str]] = field(default_factory=list)  # awaiting approval
    deletes_withheld: list[str] = field(default_factory=list)  # listing incomplete there
    unwritable: dict[str, SyncError] = field(default_factory=dict)  # not pushed: bad names
    relabels: list[str] = field(default_factory=list)
    moves: dict[str, str] = field(default_factory=dict)  # a MOVE_* step's path -> its old path
    actions: list[Action] = field(default_factory=list)  # every step but FORGET, and relabels

    def forgotten(self) -> list[str]:
        """Paths gone from both sides: only their index entry is left to drop."""
        return [path for step, path in self.steps if step is Step.FORGET]

    def recorded(self) -> list[str]:
        """Empty folders both sides hold that the index does not know yet: index them."""
        return [path for step, path in self.steps if step is Step.RECORD]

    def held_sides(self) -> dict[str, str]:
        """Held deletions: path -> the side it would have been deleted from."""
        return {path: "source" if step is Step.DELETE_SOURCE else "scaidrive"
                for step, path in self.deletes_held}


@dataclass(slots=True)
class Seen:
    """One file path as the scan saw it: its index record, the source's entry, ScaiDrive's
    etag (None where absent), and the step the table gave it."""

    step: Step
    known: IndexRecord | None
    entry: SourceEntry | None
    etag: str | None


A = TypeVar("A")
B = TypeVar("B")


def side(old: A | None, new: B | None, same: Callable[[A, B], bool]) -> str:
    if old is None:
        return "new" if new is not None else "absent"
    if new is None:
        return "deleted"
    return "same" if same(old, new) else "changed"


# (source side, target side) -> step; "same"/"same" and "absent"/"absent" need nothing.
TABLE = {
    ("new", "absent"): Step.PULL, ("absent", "new"): Step.PUSH,
    ("new", "new"): Step.BOTH_CHANGED,
    ("changed", "same"): Step.PULL, ("same", "changed"): Step.PUSH,
    ("changed", "changed"): Step.BOTH_CHANGED,
    ("deleted", "same"): Step.DELETE_TARGET, ("same", "deleted"): Step.DELETE_SOURCE,
    ("deleted", "deleted"): Step.FORGET,
    ("changed", "deleted"): Step.PULL, ("deleted", "changed"): Step.PUSH,  # a change wins
}
_KIND = {Step.PUSH: ChangeKind.PUSHED, Step.DELETE_TARGET: ChangeKind.DELETED,
         Step.DELETE_SOURCE: ChangeKind.DELETED_IN_SCAIDRIVE,
         Step.BOTH_CHANGED: ChangeKind.BOTH_CHANGED, Step.MOVE_TARGET: ChangeKind.MOVED,
         Step.MOVE_SOURCE: ChangeKind.MOVED_IN_SCAIDRIVE, Step.RECHECK: ChangeKind.RECHECKED}


def action(step: Step, path: str, seen: Seen, old: tuple[str, Seen] | None = None) -> Action:
    """The change to publish. A move's `target_etag` is the object it moves (ScaiDrive's old
    one, or the renamed one), its `version` the source's file it moves (new, or old path)."""
    if step is Step.PULL:
        kind = ChangeKind.MODIFIED if seen.known is not None else ChangeKind.CREATED
    else:
        kind = _KIND[step]
    if old is not None and step is Step.MOVE_TARGET:
        return Action(kind, path, seen.entry, from_path=old[0], target_etag=old[1].etag)
    if old is not None and step is Step.MOVE_SOURCE:
        return Action(kind, path, old[1].entry, from_path=old[0], target_etag=seen.etag)
    return Action(kind, path, seen.entry, target_etag=seen.etag)
