"""The two-way sync decision (issue 5, first step): last-synced state + source listing + target
listing -> actions. Pure and synchronous like `reconcile`; the scanner applies it to two-way
connectors.

Each side is compared with what the index says it held after the last sync: the source by its
version (`same_content`), the target by the object's etag. One side changed -> copy it over;
one side deleted and the other unchanged -> delete on the other; both changed -> the transfer
worker compares the bytes (identical: just record; different: a conflict). Paths with an open
conflict are left alone. Deletions beyond `max_delete_share` of either side are held for an
admin instead of applied.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Mapping

from shared.sync.one_way import IndexEntry, same_content, too_many_deletes
from shared.sync.model import Listing


class Step(StrEnum):
    PULL = "pull"  # source -> target
    PUSH = "push"  # target -> source
    DELETE_TARGET = "delete_target"
    DELETE_SOURCE = "delete_source"
    FORGET = "forget"  # gone on both sides: drop the index entry
    BOTH_CHANGED = "both_changed"  # compare contents: record if identical, else a conflict


@dataclass(frozen=True)
class Synced:
    """A path as both sides held it after the last sync."""

    source: IndexEntry
    target_etag: str


@dataclass
class TwoWayPlan:
    steps: list[tuple[Step, str]] = field(default_factory=list)
    unchanged: int = 0
    held_for_conflict: list[str] = field(default_factory=list)
    deletes_held: list[tuple[Step, str]] = field(default_factory=list)  # awaiting approval
    deletes_withheld: list[str] = field(default_factory=list)  # listing incomplete there


def _side(old, new, same) -> str:
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


def reconcile_two_way(index: Mapping[str, Synced], source: Listing,
                      target: Mapping[str, str], open_conflicts: frozenset[str] = frozenset(),
                      max_delete_share: float = 0.5,
                      approved_deletes: frozenset[str] = frozenset()) -> TwoWayPlan:
    """`target` maps path -> object etag under the connector's prefix. `approved_deletes`:
    deletions an admin approved after a run held them; they are not held again."""
    plan = TwoWayPlan()
    unreadable = [f.path for f in source.failures]
    for path in sorted(set(index) | set(source.entries) | set(target)):
        if path in open_conflicts:
            plan.held_for_conflict.append(path)
            continue
        known = index.get(path)
        s = _side(known.source if known else None, source.entries.get(path), same_content)
        t = _side(known.target_etag if known else None, target.get(path), str.__eq__)
        step = _TABLE.get((s, t))
        if step is None:
            plan.unchanged += 1
        elif s == "deleted" and not _listed(source, path, unreadable):
            plan.deletes_withheld.append(path)  # never delete on a listing that missed it
        else:
            plan.steps.append((step, path))
    return _hold_mass_deletes(plan, len(source.entries), len(target), max_delete_share,
                              approved_deletes)


def _listed(source: Listing, path: str, unreadable: list[str]) -> bool:
    return source.complete and not any(
        f == "" or path == f or path.startswith(f + "/") for f in unreadable)


def _hold_mass_deletes(plan: TwoWayPlan, n_source: int, n_target: int,
                       share: float, approved: frozenset[str]) -> TwoWayPlan:
    """A run that would delete more than `share` of either side deletes nothing on that side.
    The files to delete are still listed on the side they would go from."""
    for kind, side_total in ((Step.DELETE_SOURCE, n_source), (Step.DELETE_TARGET, n_target)):
        deletes = [s for s in plan.steps if s[0] is kind and s[1] not in approved]
        if deletes and too_many_deletes(len(deletes), side_total, share):
            held = set(deletes)
            plan.steps[:] = [s for s in plan.steps if s not in held]
            plan.deletes_held.extend(deletes)
    return plan
