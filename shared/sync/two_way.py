"""The two-way decision: last-synced state (the index) + source listing + target listing ->
steps and the actions to publish. Pure and synchronous like `reconcile`: the two-way scan
(services/scanner/two_way_scan.py) reads both sides and the index, calls `reconcile_two_way`
once and carries out what it returns; tests/unit/test_bisync.py is its table.

Each side is compared with what the index says it held after the last sync: the source by its
version (`same_content`), the target by the object's etag. One side changed -> copy it over;
one side deleted and the other unchanged -> delete on the other; both changed -> the transfer
worker compares the bytes (identical: just record; different: a conflict). Paths with an open
conflict are left alone. Unchanged paths labelled under an older identity mapping are
relabeled. Deletions beyond `max_delete_share` of either side are held for an admin instead of
applied (`rules.hold_mass_deletes`, the one-way rule too), and new ScaiDrive names the source
cannot hold are not pushed (`unwritable`: per-file failures, never a silent rename).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from shared.contracts import ChangeKind
from shared.errors import SyncError
from shared.sync.keys import case_collisions
from shared.sync.model import IndexRecord, Listing, same_content
from shared.sync.rules import Action, deletable, hold_mass_deletes, unreadable


class Step(StrEnum):
    PULL = "pull"  # source -> target
    PUSH = "push"  # target -> source
    DELETE_TARGET = "delete_target"
    DELETE_SOURCE = "delete_source"
    FORGET = "forget"  # gone on both sides: drop the index entry
    BOTH_CHANGED = "both_changed"  # compare contents: record if identical, else a conflict


# Raises SyncError if the source cannot hold a name written back to it (its backend's rules).
NameCheck = Callable[[str], object]


def _any_name(path: str) -> None:
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
    actions: list[Action] = field(default_factory=list)  # every step but FORGET, and relabels

    def forgotten(self) -> list[str]:
        """Paths gone from both sides: only their index entry is left to drop."""
        return [path for step, path in self.steps if step is Step.FORGET]

    def held_sides(self) -> dict[str, str]:
        """Held deletions: path -> the side it would have been deleted from."""
        return {path: "source" if step is Step.DELETE_SOURCE else "scaidrive"
                for step, path in self.deletes_held}


A = TypeVar("A")
B = TypeVar("B")


def _side(old: A | None, new: B | None, same: Callable[[A, B], bool]) -> str:
    if old is None:
        return "new" if new is not None else "absent"
    if new is None:
        return "deleted"
    return "same" if same(old, new) else "changed"


# (source side, target side) -> step; "same"/"same" and "absent"/"absent" need nothing.
_TABLE = {
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
         Step.BOTH_CHANGED: ChangeKind.BOTH_CHANGED}


def reconcile_two_way(index: Mapping[str, IndexRecord], source: Listing,
                      target: Mapping[str, str], open_conflicts: frozenset[str] = frozenset(),
                      max_delete_share: float = 0.5,
                      approved_deletes: frozenset[str] = frozenset(),
                      identity_version: int = 1,
                      source_names: NameCheck = _any_name) -> TwoWayPlan:
    """`index` holds the records of the last sync (`etag`: the object ScaiDrive held then);
    `target` maps path -> object etag under the connector's prefix. `approved_deletes`:
    deletions an admin approved after a run held them; they are not held again.
    `source_names` checks a name pushed to the source (raises SyncError if it cannot hold it)."""
    plan = TwoWayPlan()
    unreadable_paths = unreadable(source.failures)
    for path in sorted(set(index) | set(source.entries) | set(target)):
        if path in open_conflicts:
            plan.held_for_conflict.append(path)
            continue
        known = index.get(path)
        s = _side(known, source.entries.get(path), same_content)
        t = _side(None if known is None else known.etag or "", target.get(path), str.__eq__)
        step = _TABLE.get((s, t))
        if step is None:
            _unchanged(plan, path, known, identity_version)
        elif s == "deleted" and not deletable(path, source.complete, unreadable_paths):
            plan.deletes_withheld.append(path)  # never delete on a listing that missed it
        else:
            plan.steps.append((step, path))
    _hold_mass_deletes(plan, len(source.entries), len(target), max_delete_share,
                       approved_deletes)
    _drop_unwritable(plan, source, source_names)
    plan.actions = [_action(step, path, index, source, target) for step, path in plan.steps
                    if step is not Step.FORGET]
    plan.actions += [Action(ChangeKind.RELABELED, p, index[p], target_etag=target.get(p))
                     for p in plan.relabels]
    return plan


def _unchanged(plan: TwoWayPlan, path: str, known: IndexRecord | None,
               identity_version: int) -> None:
    """Same on both sides: nothing to do, unless its labels come from an older mapping."""
    if known is not None and known.identity_version != identity_version:
        plan.relabels.append(path)
    else:
        plan.unchanged += 1


def _hold_mass_deletes(plan: TwoWayPlan, n_source: int, n_target: int,
                       share: float, approved: frozenset[str]) -> None:
    """A run that would delete more than `share` of either side deletes nothing on that side.
    The files to delete are still listed on the side they would go from."""
    for kind, side_total in ((Step.DELETE_SOURCE, n_source), (Step.DELETE_TARGET, n_target)):
        paths = [p for s, p in plan.steps if s is kind]
        _, held = hold_mass_deletes(paths, side_total, share, approved)
        if held:
            plan.steps[:] = [s for s in plan.steps if not (s[0] is kind and s[1] in held)]
            plan.deletes_held.extend((kind, p) for p in held)


def _drop_unwritable(plan: TwoWayPlan, source: Listing, check: NameCheck) -> None:
    """New ScaiDrive names the source cannot hold (its rules, or only a case apart from a
    listed name) leave the plan as per-file failures: never renamed behind the user's back,
    never lost (the object stays in ScaiDrive)."""
    new = [p for s, p in plan.steps if s is Step.PUSH and p not in source.entries]
    problems: dict[str, SyncError] = dict(case_collisions(new, list(source.entries)))
    for path in new:
        try:
            check(path)
        except SyncError as exc:
            problems.setdefault(path, exc)
    plan.steps[:] = [s for s in plan.steps if not (s[0] is Step.PUSH and s[1] in problems)]
    plan.unwritable = dict(sorted(problems.items()))


def _action(step: Step, path: str, index: Mapping[str, IndexRecord], source: Listing,
            target: Mapping[str, str]) -> Action:
    if step is Step.PULL:
        kind = ChangeKind.MODIFIED if path in index else ChangeKind.CREATED
    else:
        kind = _KIND[step]
    return Action(kind, path, source.entries.get(path), target_etag=target.get(path))
