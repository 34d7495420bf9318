"""The sync decision, case by case, with no server anywhere."""
import pytest

from shared.config.active_directory import may_be_a_person
from shared.contracts import ChangeKind as K
from shared.sync.model import IndexRecord, ListFailure, Listing, SourceEntry
from shared.sync.one_way import reconcile

# When the indexed versions were read: long after their mtimes (not racily clean).
READ_AT = 3600.0


def src(path, size=10, mtime=100, fid=None, tag=None):
    return SourceEntry(path, size, mtime, fid, tag)


def idx(size=10, mtime=100, fid=None, tag=None, labels=1):
    """An index record; `labels`: the identity mapping version that labelled the object (the
    connector's is 1 unless a test says otherwise)."""
    return IndexRecord(size, mtime, fid, owner="u-1", principal=None, etag=None, synced_at=READ_AT,
                       identity_version=labels, content_tag=tag)


def listing(*entries, failures=(), complete=True):
    return Listing({e.path: e for e in entries}, list(failures), complete)


def kinds(plan):
    return sorted((a.kind.value, a.path) for a in plan.actions)


CASES = [
    # (name, index, listing, target, expected actions)
    # Content hashes (SharePoint) decide over the mtime where both sides have one.
    ("same hash, newer mtime is unchanged", {"a": idx(tag="h1")},
     listing(src("a", mtime=200, tag="h1")), {"a": 10}, []),
    ("new hash, same size and mtime is a modify", {"a": idx(tag="h1")},
     listing(src("a", tag="h2")), {"a": 10}, [("modified", "a")]),
    ("rename bumping the mtime is still a move by id and hash", {"a": idx(fid="1", tag="h1")},
     listing(src("b", mtime=300, fid="1", tag="h1")), {"a": 10}, [("moved", "b")]),
    ("rename with new content is delete + create", {"a": idx(fid="1", tag="h1")},
     listing(src("b", fid="1", tag="h2")), {"a": 10}, [("created", "b"), ("deleted", "a")]),
    ("new file is created", {}, listing(src("a")), {}, [("created", "a")]),
    ("unchanged file costs nothing", {"a": idx()}, listing(src("a")), {"a": 10}, []),
    ("size change is a modify", {"a": idx()}, listing(src("a", size=11)), {"a": 10},
     [("modified", "a")]),
    ("mtime change is a modify", {"a": idx()}, listing(src("a", mtime=101)), {"a": 10},
     [("modified", "a")]),
    ("same path, new file id is a modify", {"a": idx(fid="1")}, listing(src("a", fid="2")),
     {"a": 10}, [("modified", "a")]),
    ("vanished file is deleted", {"a": idx(), "b": idx()}, listing(src("a")),
     {"a": 10, "b": 10}, [("deleted", "b")]),
    ("object missing from bucket is repaired", {"a": idx()}, listing(src("a")), {},
     [("repaired", "a")]),
    ("object of wrong size is repaired", {"a": idx()}, listing(src("a")), {"a": 3},
     [("repaired", "a")]),
    ("unknown target trusts the index", {"a": idx()}, listing(src("a")), None, []),
    ("rename with same id and content is a move", {"old": idx(fid="7")},
     listing(src("new", fid="7")), {"old": 10}, [("moved", "new")]),
    ("rename plus edit is create + delete", {"old": idx(fid="7")},
     listing(src("new", size=99, fid="7")), {"old": 10}, [("created", "new"), ("deleted", "old")]),
    ("hard link (old path still there) is a create", {"a": idx(fid="7")},
     listing(src("a", fid="7"), src("b", fid="7")), {"a": 10}, [("created", "b")]),
    ("move whose old object is gone from the bucket is a create", {"old": idx(fid="7")},
     listing(src("new", fid="7")), {}, [("created", "new"), ("deleted", "old")]),
    ("empty everything is nothing", {}, listing(), {}, []),
    # Relabels: labelled under another mapping version than the connector's (1), otherwise
    # unchanged: new owner metadata, same bytes. Any other change carries the new labels itself.
    ("unchanged under an older mapping is relabeled", {"a": idx(labels=0)}, listing(src("a")),
     {"a": 10}, [("relabeled", "a")]),
    ("unchanged by hash under an older mapping is relabeled", {"a": idx(tag="h1", labels=0)},
     listing(src("a", mtime=200, tag="h1")), {"a": 10}, [("relabeled", "a")]),
    ("unknown target, older mapping is relabeled", {"a": idx(labels=0)}, listing(src("a")),
     None, [("relabeled", "a")]),
    ("modified under an older mapping is only modified", {"a": idx(labels=0)},
     listing(src("a", size=11)), {"a": 10}, [("modified", "a")]),
    ("repaired under an older mapping is only repaired", {"a": idx(labels=0)},
     listing(src("a")), {}, [("repaired", "a")]),
    ("vanished under an older mapping is only deleted", {"a": idx(labels=0)}, listing(),
     {"a": 10}, [("deleted", "a")]),
    ("moved under an older mapping is only moved", {"old": idx(fid="7", labels=0)},
     listing(src("new", fid="7")), {"old": 10}, [("moved", "new")]),
    ("a newer mapping than the connector's is relabeled too", {"a": idx(labels=2)},
     listing(src("a")), {"a": 10}, [("relabeled", "a")]),
]


@pytest.mark.parametrize("name,index,lst,target,expected", CASES, ids=[c[0] for c in CASES])
def test_reconcile_table(name, index, lst, target, expected):
    assert kinds(reconcile(index, lst, target)) == sorted(expected)


def test_unreadable_folder_withholds_only_its_deletes():
    index = {"ok/gone": idx(), "denied/x": idx(), "denied/sub/y": idx(), "deniedfoo": idx()}
    lst = listing(failures=[ListFailure("denied", "permission_denied", "access denied")])
    plan = reconcile(index, lst, {})
    assert kinds(plan) == [("deleted", "deniedfoo"), ("deleted", "ok/gone")]
    assert sorted(plan.deletes_withheld) == ["denied/sub/y", "denied/x"]


def test_incomplete_listing_deletes_nothing_and_moves_nothing():
    index = {"a": idx(), "b": idx(fid="9")}
    lst = listing(src("c", fid="9"), complete=False)
    plan = reconcile(index, lst, {"a": 10, "b": 10})
    assert kinds(plan) == [("created", "c")]
    assert sorted(plan.deletes_withheld) == ["a", "b"]


def test_failed_root_listing_withholds_everything():
    plan = reconcile({"a": idx()}, listing(failures=[ListFailure("", "transient", "reset")]), {})
    assert plan.actions == [] and plan.deletes_withheld == ["a"]


def test_actions_carry_the_source_version():
    plan = reconcile({}, listing(src("a", size=5, mtime=42, fid="3")), {})
    version = plan.actions[0].version
    assert (version.size, version.mtime_ns, version.file_id) == (5, 42, "3")


def test_move_names_its_origin_and_each_origin_is_used_once():
    index = {"x": idx(fid="1")}
    plan = reconcile(index, listing(src("y", fid="1"), src("z", fid="1")), {"x": 10})
    moves = plan.of(K.MOVED)
    assert len(moves) == 1 and moves[0].from_path == "x"
    assert len(plan.of(K.CREATED)) == 1 and plan.of(K.DELETED) == []


def test_unchanged_files_are_counted():
    plan = reconcile({"a": idx(), "b": idx()}, listing(src("a"), src("b")), {"a": 10, "b": 10})
    assert plan.unchanged == 2 and plan.actions == []


def test_mass_deletions_are_held_unless_approved():
    index = {f"f{i}": idx(1, 1) for i in range(10)}
    kept = Listing({p: SourceEntry(p, 1, 1) for p in ("f8", "f9")})
    plan = reconcile(index, kept, max_delete_share=0.5)
    assert plan.of(K.DELETED) == [] and len(plan.deletes_held) == 8
    approved = reconcile(index, kept, max_delete_share=0.5,
                         approved_deletes=frozenset(f"f{i}" for i in range(8)))
    assert len(approved.of(K.DELETED)) == 8 and approved.deletes_held == []
    few = reconcile(index, Listing({p: SourceEntry(p, 1, 1) for p in index if p != "f0"}),
                    max_delete_share=0.5)
    assert [a.path for a in few.of(K.DELETED)] == ["f0"] and few.deletes_held == []


def test_a_new_mapping_relabels_every_unchanged_file_with_its_indexed_version():
    index = {"a": idx(mtime=100, tag="h1"), "b": idx(), "c": idx()}
    lst = listing(src("a", mtime=200, tag="h1"), src("b"), src("c", size=11))
    plan = reconcile(index, lst, {"a": 10, "b": 10, "c": 10}, identity_version=2)
    assert kinds(plan) == [("modified", "c"), ("relabeled", "a"), ("relabeled", "b")]
    relabel = plan.of(K.RELABELED)[0]
    assert (relabel.version.size, relabel.version.mtime_ns) == (10, 100)  # the bytes it holds
    assert plan.unchanged == 0


def test_the_connector_mapping_labels_nothing_unchanged_again():
    plan = reconcile({"a": idx(labels=3)}, listing(src("a")), {"a": 10}, identity_version=3)
    assert plan.actions == [] and plan.unchanged == 1


def test_users_imported_since_relabel_only_the_system_owners_files_of_a_person():
    r"""ScaiDrive's users imported since the files were labelled: a file the system owner got
    for want of a user is labelled again (the new users may match its principal); one with a
    person's label, with no principal at all, or a built-in principal's (BUILTIN\Administrators
    owns much of a Windows share: nothing imported makes it a user) is not. Changed files are
    sent as usual."""
    def labelled(method, principal, **kw):
        return IndexRecord(10, 100, None, owner="system" if method == "system_owner" else "u-1",
                           principal=principal, etag=None, synced_at=READ_AT, method=method, **kw)
    index = {"unmatched": labelled("system_owner", "S-1-5-21-1-2-3-1109"),
             "nobody": labelled("system_owner", None),
             "admins": labelled("system_owner", "S-1-5-32-544"),
             "matched": labelled("email", "S-1-5-21-1-2-3-1107"),
             "edited": labelled("system_owner", "S-1-5-21-1-2-3-1109")}
    lst = listing(*(src(p) for p in index if p != "edited"), src("edited", size=12))
    sizes = dict.fromkeys(index, 10)
    plan = reconcile(index, lst, sizes, users_imported=may_be_a_person)
    assert kinds(plan) == [("modified", "edited"), ("relabeled", "unmatched")]
    assert plan.unchanged == 3
    assert kinds(reconcile(index, lst, sizes)) == [("modified", "edited")]  # none imported
