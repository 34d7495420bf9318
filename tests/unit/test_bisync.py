"""The two-way decision, every combination of the two sides, with no server anywhere."""
import pytest

from shared.sync.two_way import Step, Synced, reconcile_two_way
from shared.sync.one_way import IndexEntry
from shared.sync.model import ListFailure, Listing, SourceEntry

V1, V2 = SourceEntry("f", 10, 100), SourceEntry("f", 11, 200)


def synced(etag="e1"):
    return {"f": Synced(IndexEntry(10, 100), etag)}


def src(*entries, failures=(), complete=True):
    return Listing({e.path: e for e in entries}, list(failures), complete)


CASES = [
    # (name, index, source, target, expected steps)
    ("unchanged on both", synced(), src(V1), {"f": "e1"}, []),
    ("new at the source is pulled", {}, src(V1), {}, [(Step.PULL, "f")]),
    ("new in ScaiDrive is pushed", {}, src(), {"f": "e1"}, [(Step.PUSH, "f")]),
    ("new on both is compared", {}, src(V1), {"f": "e1"}, [(Step.BOTH_CHANGED, "f")]),
    ("changed at the source is pulled", synced(), src(V2), {"f": "e1"}, [(Step.PULL, "f")]),
    ("changed in ScaiDrive is pushed", synced(), src(V1), {"f": "e2"}, [(Step.PUSH, "f")]),
    ("changed on both is compared", synced(), src(V2), {"f": "e2"},
     [(Step.BOTH_CHANGED, "f")]),
    ("deleted at the source, unchanged target: delete target", synced(), src(), {"f": "e1"},
     [(Step.DELETE_TARGET, "f")]),
    ("deleted in ScaiDrive, unchanged source: delete source", synced(), src(V1), {},
     [(Step.DELETE_SOURCE, "f")]),
    ("deleted on both: forget", synced(), src(), {}, [(Step.FORGET, "f")]),
    ("changed at the source, deleted in ScaiDrive: the change wins", synced(), src(V2), {},
     [(Step.PULL, "f")]),
    ("deleted at the source, changed in ScaiDrive: the change wins", synced(), src(),
     {"f": "e2"}, [(Step.PUSH, "f")]),
]


@pytest.mark.parametrize("name,index,source,target,expected", CASES, ids=[c[0] for c in CASES])
def test_two_way_table(name, index, source, target, expected):
    assert reconcile_two_way(index, source, target, max_delete_share=1.0).steps == expected


def test_open_conflicts_are_left_alone():
    plan = reconcile_two_way(synced(), src(V2), {"f": "e2"}, open_conflicts=frozenset({"f"}))
    assert plan.steps == [] and plan.held_for_conflict == ["f"]


def test_a_listing_that_missed_the_path_deletes_nothing():
    unreadable = src(failures=[ListFailure("", "transient", "cut")], complete=False)
    plan = reconcile_two_way(synced(), unreadable, {"f": "e1"})
    assert plan.steps == [] and plan.deletes_withheld == ["f"]


def _many(n):
    index = {f"f{i}": Synced(IndexEntry(1, 1), f"e{i}") for i in range(n)}
    entries = {p: SourceEntry(p, 1, 1) for p in index}
    return index, entries


def test_mass_deletes_on_either_side_are_held_for_approval():
    index, entries = _many(10)
    target = {p: s.target_etag for p, s in index.items()}
    gone_at_source = src(*[e for p, e in entries.items() if p >= "f8"])  # 8 of 10 deleted
    plan = reconcile_two_way(index, gone_at_source, target)
    assert plan.steps == [] and len(plan.deletes_held) == 8
    gone_in_scaidrive = {p: e for p, e in target.items() if p >= "f8"}
    plan = reconcile_two_way(index, src(*entries.values()), gone_in_scaidrive)
    assert plan.steps == [] and {s for s, _ in plan.deletes_held} == {Step.DELETE_SOURCE}
    few = reconcile_two_way(index, src(*[e for p, e in entries.items() if p != "f0"]), target)
    assert few.steps == [(Step.DELETE_TARGET, "f0")] and not few.deletes_held


def test_approved_deletions_are_applied_however_many():
    index, entries = _many(10)
    target = {p: s.target_etag for p, s in index.items()}
    gone = src(*[e for p, e in entries.items() if p >= "f8"])
    approved = frozenset(p for p in index if p < "f8")
    plan = reconcile_two_way(index, gone, target, approved_deletes=approved)
    assert len(plan.steps) == 8 and not plan.deletes_held
