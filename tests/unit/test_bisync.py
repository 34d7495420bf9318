"""The two-way decision, every combination of the two sides, with no server anywhere."""
import pytest

from shared.contracts import ChangeKind as K
from shared.sync.keys import check_smb_name
from shared.sync.model import IndexRecord, ListFailure, Listing, SourceEntry
from shared.sync.two_way import Step, reconcile_two_way

V1, V2 = SourceEntry("f", 10, 100), SourceEntry("f", 11, 200)


def record(size, mtime, etag, labels=1):
    """The index's record of the last sync: the source's version, ScaiDrive's etag and the
    identity mapping version that labelled the object (the connector's is 1)."""
    return IndexRecord(size, mtime, None, owner="u-1", principal=None, etag=etag, synced_at=0.0,
                       identity_version=labels)


def synced(etag="e1", labels=1):
    return {"f": record(10, 100, etag, labels)}


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
    index = {f"f{i}": record(1, 1, f"e{i}") for i in range(n)}
    entries = {p: SourceEntry(p, 1, 1) for p in index}
    return index, entries


def test_mass_deletes_on_either_side_are_held_for_approval():
    index, entries = _many(10)
    target = {p: s.etag for p, s in index.items()}
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
    target = {p: s.etag for p, s in index.items()}
    gone = src(*[e for p, e in entries.items() if p >= "f8"])
    approved = frozenset(p for p in index if p < "f8")
    plan = reconcile_two_way(index, gone, target, approved_deletes=approved)
    assert len(plan.steps) == 8 and not plan.deletes_held


def kinds(plan):
    return [(a.kind, a.path) for a in plan.actions]


ACTION_CASES = [
    # (name, index, source, target, expected actions): what the scanner publishes
    ("new at the source is created", {}, src(V1), {}, [(K.CREATED, "f")]),
    ("changed at the source is modified", synced(), src(V2), {"f": "e1"}, [(K.MODIFIED, "f")]),
    ("changed in ScaiDrive is pushed", synced(), src(V1), {"f": "e2"}, [(K.PUSHED, "f")]),
    ("deleted at the source is deleted", synced(), src(), {"f": "e1"}, [(K.DELETED, "f")]),
    ("deleted in ScaiDrive is deleted at the source", synced(), src(V1), {},
     [(K.DELETED_IN_SCAIDRIVE, "f")]),
    ("gone from both is only forgotten", synced(), src(), {}, []),
    # Relabels: unchanged on both sides, labelled under another mapping than the connector's.
    ("unchanged under an older mapping is relabeled", synced(labels=0), src(V1), {"f": "e1"},
     [(K.RELABELED, "f")]),
    ("changed at the source under an older mapping is only modified", synced(labels=0),
     src(V2), {"f": "e1"}, [(K.MODIFIED, "f")]),
    ("changed in ScaiDrive under an older mapping is only pushed", synced(labels=0), src(V1),
     {"f": "e2"}, [(K.PUSHED, "f")]),
    ("deleted in ScaiDrive under an older mapping is only deleted", synced(labels=0), src(V1),
     {}, [(K.DELETED_IN_SCAIDRIVE, "f")]),
]


@pytest.mark.parametrize("name,index,source,target,expected", ACTION_CASES,
                         ids=[c[0] for c in ACTION_CASES])
def test_two_way_actions_table(name, index, source, target, expected):
    assert kinds(reconcile_two_way(index, source, target, max_delete_share=1.0)) == expected


def test_actions_carry_the_versions_the_scan_saw():
    plan = reconcile_two_way(synced(), src(V2), {"f": "e1"}, max_delete_share=1.0)
    action = plan.actions[0]
    assert (action.version.size, action.version.mtime_ns, action.target_etag) == (11, 200, "e1")
    relabel = reconcile_two_way(synced(labels=0), src(V1), {"f": "e1"}).actions[0]
    assert (relabel.version.size, relabel.target_etag) == (10, "e1")


def test_a_path_in_conflict_is_not_relabeled():
    plan = reconcile_two_way(synced(labels=0), src(V1), {"f": "e1"},
                             open_conflicts=frozenset({"f"}))
    assert plan.actions == [] and plan.held_for_conflict == ["f"]


def test_new_scaidrive_names_the_source_cannot_hold_are_not_pushed():
    listed = src(SourceEntry("A.txt", 1, 1))
    target = {"a.txt": "e1", "ok.txt": "e2", "bad:name": "e3"}
    plan = reconcile_two_way({}, listed, target, source_names=check_smb_name)
    assert plan.steps == [(Step.PULL, "A.txt"), (Step.PUSH, "ok.txt")]
    assert sorted(plan.unwritable) == ["a.txt", "bad:name"]
    assert {e.cause for e in plan.unwritable.values()} == {"name_collision", "invalid_name"}
