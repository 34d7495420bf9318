"""The two-way decision for empty folders (shared/sync/folders.py, part of `reconcile_two_way`):
paths ending in "/", markers in ScaiDrive; the file cases are tests/unit/test_bisync.py."""
import pytest

from shared.contracts import ChangeKind as K
from shared.sync.keys import check_smb_name
from shared.sync.model import IndexRecord, ListFailure, SourceEntry
from shared.sync.two_way import Step, reconcile_two_way
from tests.unit.test_bisync import READ_AT, _many, kinds, src

# --- empty folders (shared/sync/folders.py): paths ending in "/", markers in ScaiDrive --------

FOLDER = {"d/": IndexRecord(0, 0, None, owner="u-1", principal=None, etag=None, synced_at=READ_AT)}
MARKER = {"d/": "e-empty"}


def dirs(*empty, files=(), failures=(), complete=True):
    """A listing of a backend that reports folders: `empty` ones hold nothing at all."""
    listing = src(*[SourceEntry(p, 1, 1) for p in files], failures=failures, complete=complete)
    listing.empty_folders = set(empty)
    return listing


FOLDER_CASES = [
    # (name, index, source, target, expected steps)
    ("an empty folder new at the source: a marker in ScaiDrive", {}, dirs("d"), {},
     [(Step.PULL, "d/")]),
    ("a marker new in ScaiDrive: a folder at the source", {}, dirs(), MARKER,
     [(Step.PUSH, "d/")]),
    ("empty on both, not indexed: recorded", {}, dirs("d"), MARKER, [(Step.RECORD, "d/")]),
    ("empty on both, indexed: nothing", FOLDER, dirs("d"), MARKER, []),
    ("removed at the source: the marker goes", FOLDER, dirs(), MARKER,
     [(Step.DELETE_TARGET, "d/")]),
    ("marker removed in ScaiDrive: the folder goes if empty", FOLDER, dirs("d"), {},
     [(Step.DELETE_SOURCE, "d/")]),
    ("gone on both: forgotten", FOLDER, dirs(), {}, [(Step.FORGET, "d/")]),
    ("marker removed, a file added at the source: it stays, travels with its file", FOLDER,
     dirs(files=["d/new.txt"]), {}, [(Step.PULL, "d/new.txt"), (Step.FORGET, "d/")]),
    ("removed at the source, a file added in ScaiDrive: it stays, travels with its file",
     FOLDER, dirs(), MARKER | {"d/new.txt": "e9"},
     [(Step.PUSH, "d/new.txt"), (Step.FORGET, "d/")]),
    ("a folder holding a file travels with it: no marker", {}, dirs(files=["d/f"]), {},
     [(Step.PULL, "d/f")]),
    ("a folder holding an empty folder: only the inner one travels", {}, dirs("d/e"), {},
     [(Step.PULL, "d/e/")]),
    ("a marker beside files in ScaiDrive: nothing for the folder", {}, dirs(),
     MARKER | {"d/f": "e9"}, [(Step.PUSH, "d/f")]),
    ("a backend that does not report folders: markers are left alone", {}, src(), MARKER, []),
]


@pytest.mark.parametrize("name,index,source,target,expected", FOLDER_CASES,
                         ids=[c[0] for c in FOLDER_CASES])
def test_folders_table(name, index, source, target, expected):
    assert reconcile_two_way(index, source, target, max_delete_share=1.0).steps == expected


def test_a_folder_the_listing_cannot_vouch_for_is_not_removed():
    for listing in (dirs(failures=[ListFailure("", "transient", "cut")], complete=False),
                    dirs(failures=[ListFailure("d", "permission_denied", "denied")])):
        plan = reconcile_two_way(FOLDER, listing, MARKER)
        assert plan.steps == [] and plan.deletes_withheld == ["d/"]


def test_folder_removals_count_toward_no_mass_delete_hold():
    index, entries = _many(10)
    index |= {f"empty{i}/": FOLDER["d/"] for i in range(30)}
    target = {p: s.etag or "" for p, s in index.items() if not p.startswith("empty")} | \
        {f"empty{i}/": "e-empty" for i in range(30)}
    listing = dirs(files=[p for p in entries if p >= "f5"])  # 5 of 10 files, every folder gone
    plan = reconcile_two_way(index, listing, target)  # 50% of the files: not held
    assert plan.deletes_held == []
    assert [k for k, _ in kinds(plan)].count(K.DELETED) == 5 + 30
    listing = dirs(files=[p for p in entries if p >= "f6"])  # 6 of 10 files: held, folders not
    plan = reconcile_two_way(index, listing, target)
    assert len(plan.deletes_held) == 6
    assert kinds(plan) == [(K.DELETED, f"empty{i}/") for i in sorted(range(30), key=str)]


def test_folder_actions_carry_no_version_and_unwritable_names_are_failures():
    plan = reconcile_two_way({}, dirs("a"), {"b/": "m", "bad:name/": "m"},
                             source_names=check_smb_name)
    assert [(a.kind, a.path, a.version) for a in plan.actions] == \
        [(K.CREATED, "a/", None), (K.PUSHED, "b/", None)]
    assert list(plan.unwritable) == ["bad:name/"]


def test_an_empty_folder_renamed_by_case_in_scaidrive_is_renamed_at_the_source():
    """Its marker `Docs/Sub/` is now `docs/sub/`: one rename at the source per level whose
    spelling changed, not a removal beside a creation that collides with it (before: the new
    spelling refused as a case collision, the folder removed, made again a run later)."""
    index = {"Docs/Sub/": FOLDER["d/"]}
    plan = reconcile_two_way(index, dirs("Docs/Sub"), {"docs/sub/": "m"},
                             source_names=check_smb_name)
    assert plan.unwritable == {} and plan.moves == {"docs/sub/": "Docs/Sub/"}
    assert [(a.kind, a.path, a.from_path) for a in plan.actions] == [
        (K.MOVED_IN_SCAIDRIVE, "docs/", "Docs/"), (K.MOVED_IN_SCAIDRIVE, "docs/sub/", "Docs/Sub/")]
    # ScaiDrive holding something under the old spelling as well: the collision, as before.
    plan = reconcile_two_way(index, dirs("Docs/Sub"), {"docs/sub/": "m", "Docs/x": "e"},
                             source_names=check_smb_name)
    assert list(plan.unwritable) == ["docs/sub/"] and plan.moves == {}
    assert (K.DELETED_IN_SCAIDRIVE, "Docs/Sub/") in kinds(plan)


def test_a_name_a_case_apart_from_an_empty_folder_at_the_source_is_not_pushed():
    """The source holds the empty folder `docs`: ScaiDrive's new `Docs/new.txt` would land in
    it under another spelling; a per-file failure, not a push (the folder's marker is made)."""
    plan = reconcile_two_way({}, dirs("docs"), {"Docs/new.txt": "e"},
                             source_names=check_smb_name)
    assert list(plan.unwritable) == ["Docs/new.txt"] and (Step.PUSH, "Docs/new.txt") \
        not in plan.steps
