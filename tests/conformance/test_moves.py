"""`Source.move` (two-way: a file renamed in ScaiDrive is renamed at the source): the same file
at the new path, no bytes sent, its file id kept; conditional like the writes, so a file
changed at the source meanwhile, or anything at the new path, is never moved or overwritten."""
from __future__ import annotations

import pytest

from shared import errors
from shared.sync.model import same_content
from tests.conformance.remotes import needs


def test_a_moved_file_keeps_its_id_and_content(source, remote):
    remote.put("a/old.txt", b"the report")
    before = source.stat("a/old.txt")

    after = source.move("a/old.txt", "b/c/new name.txt", expect=before)

    assert after == source.stat("b/c/new name.txt")  # the version the source now holds
    assert after.file_id == before.file_id and after.size == before.size
    assert remote.read("b/c/new name.txt") == b"the report"
    assert not remote.exists("a/old.txt")
    listed = source.list().entries
    assert "a/old.txt" not in listed and same_content(listed["b/c/new name.txt"], after)


def test_a_rename_in_the_same_folder(source, remote):
    remote.put("f.txt", b"x")
    moved = source.move("f.txt", "g.txt", expect=source.stat("f.txt"))
    assert moved.path == "g.txt" and remote.read("g.txt") == b"x" and not remote.exists("f.txt")


def test_refused_when_the_new_path_is_taken(source, remote):
    remote.put("old.txt", b"ours")
    remote.put("new.txt", b"someone else's file")
    remote.mkdir("folder")

    for taken in ("new.txt", "folder"):
        with pytest.raises(errors.ChangedAtSource) as info:
            source.move("old.txt", taken, expect=source.stat("old.txt"))
        assert info.value.path == taken and info.value.cause == "changed_at_source"
    assert remote.read("old.txt") == b"ours"
    assert remote.read("new.txt") == b"someone else's file"


def test_refused_when_the_file_changed_at_the_source(source, remote):
    remote.put("old.txt", b"as synced")
    synced = source.stat("old.txt")
    remote.modify("old.txt", b"a colleague's edit")

    with pytest.raises(errors.ChangedAtSource) as info:
        source.move("old.txt", "new.txt", expect=synced)

    assert info.value.path == "old.txt"
    assert remote.read("old.txt") == b"a colleague's edit" and not remote.exists("new.txt")


def test_a_file_gone_is_not_found(source, remote):
    remote.put("old.txt", b"x")
    synced = source.stat("old.txt")
    remote.delete("old.txt")
    with pytest.raises(errors.NotFound):
        source.move("old.txt", "new.txt", expect=synced)
    assert not remote.exists("new.txt")


def test_a_path_that_escapes_the_base_is_refused(source, remote):
    remote.put("old.txt", b"x")
    with pytest.raises(errors.InvalidName):
        source.move("old.txt", "../elsewhere.txt", expect=source.stat("old.txt"))
    assert remote.read("old.txt") == b"x"


def test_smb_removes_the_old_folder_once_empty_and_only_then(source, remote):
    needs(remote, "walks_by_folder", "keeps its folders (folders do not travel yet)")
    remote.put("docs/sub/a.txt", b"a")
    remote.put("docs/sub/b.txt", b"b")
    remote.put("docs/keep.txt", b"k")

    source.move("docs/sub/a.txt", "new/a.txt", expect=source.stat("docs/sub/a.txt"))
    assert remote.exists("docs/sub/b.txt")  # not empty: kept
    source.move("docs/sub/b.txt", "new/b.txt", expect=source.stat("docs/sub/b.txt"))
    assert not remote.exists("docs/sub") and remote.exists("docs/keep.txt")
    source.move("docs/keep.txt", "new/keep.txt", expect=source.stat("docs/keep.txt"))
    assert not remote.exists("docs")
    assert sorted(source.list().entries) == ["new/a.txt", "new/b.txt", "new/keep.txt"]


def test_a_case_only_rename_takes_the_new_spelling(source, remote):
    """Renamed in ScaiDrive from Report.txt to report.txt: on a server that ignores case the
    new name finds the file itself, which is no reason to refuse; the listing then shows the
    new spelling, so the next run sees both sides agree."""
    remote.put("Report.txt", b"quarterly")
    before = source.stat("Report.txt")
    moved = source.move("Report.txt", "report.txt", expect=before)
    assert moved.path == "report.txt" and moved.file_id == before.file_id
    listed = source.list().entries
    assert "report.txt" in listed and "Report.txt" not in listed
    assert remote.read("report.txt") == b"quarterly"
