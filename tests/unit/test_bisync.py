"""The two-way decision, every combination of the two sides, with no server anywhere."""
import pytest

from shared.config.active_directory import may_be_a_person
from shared.contracts import ChangeKind as K
from shared.sync.keys import check_smb_name
from shared.sync.model import IndexRecord, ListFailure, Listing, SourceEntry
from shared.sync.two_way import Step, reconcile_two_way

# When the indexed versions were read: long after their mtimes (not racily clean).
READ_AT = 3600.0

V1, V2 = SourceEntry("f", 10, 100), SourceEntry("f", 11, 200)


def record(size, mtime, etag, labels=1):
    """The index's record of the last sync: the source's version, ScaiDrive's etag and the
    identity mapping version that labelled the object (the connector's is 1)."""
    return IndexRecord(size, mtime, None, owner="u-1", principal=None, etag=etag, synced_at=READ_AT,
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


# --- renames: a deletion and a creation of the same file on one side are one move -------------

def rec(path_etag, file_id="id-a", size=10, mtime=100):
    return IndexRecord(size, mtime, file_id, owner="u-1", principal=None, etag=path_etag,
                       synced_at=READ_AT)


def at(path, file_id="id-a", size=10, mtime=100):
    return SourceEntry(path, size, mtime, file_id)


A_SYNCED = {"a": rec("e1")}

RENAME_CASES = [
    # (name, index, source, target, open conflicts, expected steps, expected moves)
    ("renamed at the source: the object moves", A_SYNCED, src(at("b")), {"a": "e1"}, (),
     [(Step.MOVE_TARGET, "b")], {"b": "a"}),
    ("renamed in ScaiDrive: the file is renamed at the source", A_SYNCED, src(at("a")),
     {"b": "e1"}, (), [(Step.MOVE_SOURCE, "b")], {"b": "a"}),
    ("moved into a new folder at the source", A_SYNCED, src(at("x/y/a")), {"a": "e1"}, (),
     [(Step.MOVE_TARGET, "x/y/a")], {"x/y/a": "a"}),
    ("renamed and edited at the source: a delete and a create", A_SYNCED,
     src(at("b", size=11, mtime=200)), {"a": "e1"}, (),
     [(Step.DELETE_TARGET, "a"), (Step.PULL, "b")], {}),
    ("renamed and edited in ScaiDrive: a delete and a push", A_SYNCED, src(at("a")),
     {"b": "e2"}, (), [(Step.DELETE_SOURCE, "a"), (Step.PUSH, "b")], {}),
    ("renamed at the source, edited in ScaiDrive: both kept", A_SYNCED, src(at("b")),
     {"a": "e2"}, (), [(Step.PUSH, "a"), (Step.PULL, "b")], {}),
    ("renamed in ScaiDrive, edited at the source: both kept", A_SYNCED,
     src(at("a", size=11, mtime=200)), {"b": "e1"}, (), [(Step.PULL, "a"), (Step.PUSH, "b")],
     {}),
    ("no file id (a backend without one): a delete and a create", {"a": rec("e1", None)},
     src(at("b", None)), {"a": "e1"}, (), [(Step.DELETE_TARGET, "a"), (Step.PULL, "b")], {}),
    ("ambiguous at the source (two new paths, one file id): a delete and creates", A_SYNCED,
     src(at("b"), at("c")), {"a": "e1"}, (),
     [(Step.DELETE_TARGET, "a"), (Step.PULL, "b"), (Step.PULL, "c")], {}),
    ("ambiguous in ScaiDrive (two copies of the content): a delete and pushes", A_SYNCED,
     src(at("a")), {"b": "e1", "c": "e1"}, (),
     [(Step.DELETE_SOURCE, "a"), (Step.PUSH, "b"), (Step.PUSH, "c")], {}),
    ("ambiguous in ScaiDrive (two identical files gone, one new): deletes and a push",
     {"a1": rec("e1", "id-1"), "a2": rec("e1", "id-2")}, src(at("a1", "id-1"), at("a2", "id-2")),
     {"b": "e1"}, (), [(Step.DELETE_SOURCE, "a1"), (Step.DELETE_SOURCE, "a2"), (Step.PUSH, "b")],
     {}),
    ("renamed differently on both sides: old path forgotten, both names kept", A_SYNCED,
     src(at("b")), {"c": "e1"}, (), [(Step.FORGET, "a"), (Step.PULL, "b"), (Step.PUSH, "c")],
     {}),
    ("renamed the same way on both sides: compared, nothing sent", A_SYNCED, src(at("b")),
     {"b": "e1"}, (), [(Step.FORGET, "a"), (Step.BOTH_CHANGED, "b")], {}),
    ("renamed in ScaiDrive onto a path in conflict: never moved onto it", A_SYNCED,
     src(at("a")), {"b": "e1"}, ("b",), [(Step.DELETE_SOURCE, "a")], {}),
    ("renamed at the source from a path in conflict: not moved", A_SYNCED, src(at("b")),
     {"a": "e1"}, ("a",), [(Step.PULL, "b")], {}),
    ("renamed by case only in ScaiDrive: the source's file takes the new spelling",
     {"Report": rec("e1")}, src(at("Report")), {"report": "e1"}, (),
     [(Step.MOVE_SOURCE, "report")], {"report": "Report"}),
    ("renamed by case only at the source: the object takes the new spelling",
     {"Report": rec("e1")}, src(at("report")), {"Report": "e1"}, (),
     [(Step.MOVE_TARGET, "report")], {"report": "Report"}),
    ("a ScaiDrive object already at the new source path: compared, not moved", A_SYNCED,
     src(at("b")), {"a": "e1", "b": "e9"}, (),
     [(Step.DELETE_TARGET, "a"), (Step.BOTH_CHANGED, "b")], {}),
]


@pytest.mark.parametrize("name,index,source,target,conflicts,expected,moves", RENAME_CASES,
                         ids=[c[0] for c in RENAME_CASES])
def test_renames_table(name, index, source, target, conflicts, expected, moves):
    plan = reconcile_two_way(index, source, target, frozenset(conflicts), max_delete_share=1.0)
    assert (plan.steps, plan.moves) == (expected, moves)


def test_moves_carry_the_old_path_and_the_versions_they_are_conditional_on():
    moved_object = reconcile_two_way(A_SYNCED, src(at("b")), {"a": "e1"}).actions
    assert [(a.kind, a.path, a.from_path, a.target_etag) for a in moved_object] == \
        [(K.MOVED, "b", "a", "e1")]  # the object expected at the old path
    assert moved_object[0].version == at("b")  # the source's file at its new path
    renamed_at_source = reconcile_two_way(A_SYNCED, src(at("a")), {"b": "e1"}).actions
    assert [(a.kind, a.path, a.from_path, a.target_etag) for a in renamed_at_source] == \
        [(K.MOVED_IN_SCAIDRIVE, "b", "a", "e1")]  # the renamed object
    assert renamed_at_source[0].version == at("a")  # the file the source must still hold


def test_a_rename_the_listing_cannot_vouch_for_is_no_move():
    cut = src(at("b"), failures=[ListFailure("x", "transient", "cut")], complete=False)
    plan = reconcile_two_way(A_SYNCED, cut, {"a": "e1"})
    assert plan.steps == [(Step.PULL, "b")] and plan.deletes_withheld == ["a"]


def test_a_case_only_rename_that_is_not_one_move_still_collides():
    """Renamed by case with a copy beside it (no unique pair), or a folder ScaiDrive holds
    under both spellings: the new spelling is refused as a case collision (a push beside the
    delete could land on the old file), as before; the next run, with the old name gone,
    pushes it."""
    copied = reconcile_two_way({"Report": rec("e1")}, src(at("Report")),
                               {"report": "e1", "copy": "e1"}, max_delete_share=1.0)
    assert copied.steps == [(Step.DELETE_SOURCE, "Report"), (Step.PUSH, "copy")]
    assert list(copied.unwritable) == ["report"] and copied.moves == {}
    both = {"Docs/a": rec("e1", "id-a"), "Docs/b": rec("e2", "id-b")}
    folder = reconcile_two_way(both, src(at("Docs/a", "id-a"), at("Docs/b", "id-b")),
                               {"docs/a": "e1", "Docs/b": "e2"}, max_delete_share=1.0)
    assert folder.steps == [(Step.DELETE_SOURCE, "Docs/a")]
    assert list(folder.unwritable) == ["docs/a"]
    assert not [a for a in folder.actions if a.path.endswith("/")]


def test_a_folder_renamed_by_case_in_scaidrive_is_renamed_at_the_source():
    """Every file of `Docs/` (and `Docs/Sub/`) now under `docs/` (`docs/sub/`) in ScaiDrive:
    each file is one move (no collision with its own old spelling), and each folder whose
    spelling changed is one folder job, renamed by its last name (in any order: a server that
    ignores case finds the parents however they are spelled)."""
    index = {"Docs/a": rec("e1", "id-a"), "Docs/Sub/b": rec("e2", "id-b"),
             "Other/c": rec("e3", "id-c")}
    source = src(at("Docs/a", "id-a"), at("Docs/Sub/b", "id-b"), at("Other/c", "id-c"))
    plan = reconcile_two_way(index, source, {"docs/a": "e1", "docs/sub/b": "e2",
                                             "Other/c": "e3"},
                             max_delete_share=0.5, source_names=check_smb_name)
    assert plan.unwritable == {} and plan.deletes_held == []
    assert plan.moves == {"docs/a": "Docs/a", "docs/sub/b": "Docs/Sub/b"}
    assert [(a.kind, a.path, a.from_path) for a in plan.actions] == [
        (K.MOVED_IN_SCAIDRIVE, "docs/a", "Docs/a"),
        (K.MOVED_IN_SCAIDRIVE, "docs/sub/b", "Docs/Sub/b"),
        (K.MOVED_IN_SCAIDRIVE, "docs/", "Docs/"),
        (K.MOVED_IN_SCAIDRIVE, "docs/sub/", "Docs/Sub/")]


def test_a_scaidrive_rename_to_a_name_the_source_cannot_hold_is_no_move():
    plan = reconcile_two_way(A_SYNCED, src(at("a")), {"bad:name": "e1"},
                             max_delete_share=1.0, source_names=check_smb_name)
    assert plan.steps == [(Step.DELETE_SOURCE, "a")] and list(plan.unwritable) == ["bad:name"]


def _tree(n):
    index = {f"d/f{i}": rec(f"e{i}", f"id{i}", size=i) for i in range(n)}
    return index, {p: at(p, r.file_id, size=r.size) for p, r in index.items()}


def test_a_mass_rename_on_either_side_is_moved_not_held():
    index, entries = _tree(10)
    target = {p: r.etag for p, r in index.items()}
    renamed = {p: p.replace("d/", "e/") if p < "d/f6" else p for p in index}  # 60%
    in_scaidrive = {renamed[p]: etag for p, etag in target.items()}
    plan = reconcile_two_way(index, src(*entries.values()), in_scaidrive)
    assert not plan.deletes_held and len(plan.moves) == 6
    assert {s for s, _ in plan.steps} == {Step.MOVE_SOURCE}
    at_source = src(*[at(renamed[p], e.file_id, size=e.size) for p, e in entries.items()])
    plan = reconcile_two_way(index, at_source, target)
    assert not plan.deletes_held and len(plan.steps) == 6
    assert {s for s, _ in plan.steps} == {Step.MOVE_TARGET}
    # Deletions beside the renames are counted against the hold without the moves: 6 moved
    # and 4 deleted is 40% deleted (applied), 6 moved and 7 deleted of 13 is over half (held).
    deleted = {p: e for p, e in in_scaidrive.items() if not p.startswith("d/f")}
    plan = reconcile_two_way(index, src(*entries.values()), deleted)
    assert len(plan.moves) == 6 and not plan.deletes_held
    assert [s for s, _ in plan.steps].count(Step.DELETE_SOURCE) == 4
    extra = [f"g{i}" for i in range(3)]
    more = src(*entries.values(), *[at(p, p) for p in extra])
    index |= {p: rec(p, p) for p in extra}
    plan = reconcile_two_way(index, more, deleted)
    assert len(plan.moves) == 6 and len(plan.deletes_held) == 7


def test_users_imported_since_relabel_the_system_owners_files_on_both_ways():
    """As one way (tests/unit/test_reconcile.py): an unchanged file labelled with the system
    owner for want of a user is labelled again once users were imported since; a racily clean
    one is relabeled first (its bytes compared by a later run), never both at once."""
    unmatched = IndexRecord(10, 100, None, owner="system", principal="carol@contoso.com",
                            etag="e1", synced_at=READ_AT)
    assert reconcile_two_way({"f": unmatched}, src(V1), {"f": "e1"}).actions == []
    plan = reconcile_two_way({"f": unmatched}, src(V1), {"f": "e1"}, users_imported=may_be_a_person)
    assert [(a.kind, a.path, a.target_etag) for a in plan.actions] == [(K.RELABELED, "f", "e1")]
    racy = IndexRecord(10, 100, None, owner="system", principal="carol@contoso.com", etag="e1",
                       synced_at=100e-9)
    plan = reconcile_two_way({"f": racy}, src(V1), {"f": "e1"}, users_imported=may_be_a_person)
    assert [a.kind for a in plan.actions] == [K.RELABELED]
