"""Two-way folders at the source: the listing reports the folders that hold nothing
(`Listing.empty_folders`), `make_folder` creates one, `remove_folder_if_empty` removes one only
while the server says it is empty (then its emptied parents; never the base). SharePoint's
listing is rebuilt from a saved delta position too: its empty folders must be right either way;
"empty" at removal is Graph's childCount, and the DELETE carries If-Match on the folder's eTag,
which a child saved meanwhile changes. `respell_folder` gives a folder a new spelling (renamed by
case only in ScaiDrive): the same folder, its files under the new spelling with their ids."""
from __future__ import annotations

import copy
import os

import pytest

from shared import errors
from shared.sync.model import DeltaCursor
from tests.conformance.remotes import SharePointRemote, SmbRemote, needs, read_all

TEMP = ".~scaidrive-0123456789abcdef.tmp"  # an atomic write's temp file: never listed


def test_the_listing_reports_the_folders_that_hold_nothing(source, remote):
    needs(remote, "syncs_folders", "does not report folders yet")
    remote.mkdir("a/empty")
    remote.mkdir("a/b/inner")
    remote.put("a/b/f.txt", b"x")
    remote.put(f"hidden/{TEMP}", b"unlisted")
    remote.mkdir("top")

    listing = source.list()

    assert listing.empty_folders == {"a/empty", "a/b/inner", "top"}
    assert {part_folder for part in source.walk()
            for part_folder in part.empty_folders or ()} == listing.empty_folders


def test_a_backend_without_folders_reports_none(source, remote):
    if remote.syncs_folders:
        return
    remote.mkdir("empty")
    assert source.list().empty_folders is None


def test_make_folder_creates_it_and_its_parents(source, remote):
    needs(remote, "syncs_folders", "does not make folders yet")
    source.make_folder("x/y/z")
    source.make_folder("x/y/z")  # already there: fine
    assert remote.exists("x/y/z")
    assert source.list().empty_folders == {"x/y/z"}


def test_remove_folder_if_empty_takes_only_an_empty_one(source, remote):
    needs(remote, "syncs_folders", "does not remove folders yet")
    remote.mkdir("p/q/empty")
    remote.put("p/keep.txt", b"k")
    remote.put(f"h/{TEMP}", b"a file no scan sees")
    remote.mkdir("r/s")

    assert source.remove_folder_if_empty("h") is False and remote.exists(f"h/{TEMP}")
    assert source.remove_folder_if_empty("r") is False and remote.exists("r/s")  # a subfolder
    assert source.remove_folder_if_empty("p/q/empty") is True
    assert not remote.exists("p/q") and remote.exists("p/keep.txt")  # emptied parent went
    assert source.remove_folder_if_empty("gone") is True  # already gone
    assert source.remove_folder_if_empty("") is False and remote.exists("")  # never the base


def test_a_move_removes_the_folder_it_empties(source, remote):
    needs(remote, "syncs_folders", "keeps its folders")
    remote.put("docs/sub/a.txt", b"a")
    remote.put("docs/keep.txt", b"k")

    source.move("docs/sub/a.txt", "new/a.txt", expect=source.stat("docs/sub/a.txt"))

    assert not remote.exists("docs/sub") and remote.exists("docs/keep.txt")
    assert source.list().empty_folders == set()


def stored_names(remote, folder: str = "") -> set[str]:
    """The names in `folder` as the server itself stores them: the Samba share's directory on
    this disk, the emulator's items."""
    if isinstance(remote, SmbRemote):
        return set(os.listdir(remote.root / folder))
    item = remote.graph.item(remote.drive, folder)
    return {child.name for child in remote.drive.children(item.id)}


def test_a_folder_respelled_keeps_its_files_and_their_ids(source, remote):
    needs(remote, "syncs_folders", "does not respell folders yet")
    files = {"Docs/Report.txt": b"quarterly", "Docs/Sub/notes.txt": b"notes",
             "Docs/Sub/deeper/x.bin": b"\0" * 10}
    for path, data in files.items():
        remote.put(path, data)
    remote.mkdir("Docs/Empty")
    before = source.list()

    source.respell_folder("Docs", "docs")

    assert "docs" in stored_names(remote) and "Docs" not in stored_names(remote)
    after = source.list()
    assert sorted(after.entries) == sorted("d" + path[1:] for path in files)
    for path, data in files.items():
        new = "d" + path[1:]
        assert after.entries[new].file_id == before.entries[path].file_id
        assert read_all(source, new) == data
    assert after.empty_folders == {"docs/Empty"}


def test_a_nested_folder_is_found_whatever_its_parents_spelling(source, remote):
    needs(remote, "syncs_folders", "does not respell folders yet")
    remote.put("A/B/f.txt", b"f")
    remote.put("A/C/g.txt", b"g")

    source.respell_folder("A/B", "a/b")  # the parent as ScaiDrive spells it
    source.respell_folder("a/C", "A/c")  # the old path with another spelling of the parent

    assert stored_names(remote) == {"A"} and stored_names(remote, "A") == {"b", "c"}
    assert sorted(source.list().entries) == ["A/b/f.txt", "A/c/g.txt"]


def test_a_folder_already_respelled_is_left_as_it_is(source, remote):
    needs(remote, "syncs_folders", "does not respell folders yet")
    remote.put("Docs/a.txt", b"a")
    source.respell_folder("Docs", "docs")
    done = source.list().entries
    graph = remote.graph if isinstance(remote, SharePointRemote) else None
    if graph is not None:
        graph.reset_counts()

    source.respell_folder("Docs", "docs")  # the job redelivered
    source.respell_folder("docs", "docs")

    assert stored_names(remote) == {"docs"} and source.list().entries == done
    if graph is not None:
        assert "patch" not in graph.counts()  # nothing to change: nothing sent


def test_respelling_a_folder_that_is_not_there_is_not_found(source, remote):
    needs(remote, "syncs_folders", "does not respell folders yet")
    remote.put("Docs/a.txt", b"a")

    for old, new in (("Gone", "gone"), ("Docs/Gone", "docs/gone"), ("Gone/Docs", "gone/docs"),
                     ("Docs/a.txt", "Docs/A.txt")):  # a file is no folder
        with pytest.raises(errors.NotFound):
            source.respell_folder(old, new)

    assert stored_names(remote) == {"Docs"} and stored_names(remote, "Docs") == {"a.txt"}


def test_anything_but_a_change_of_case_is_refused(source, remote):
    needs(remote, "syncs_folders", "does not respell folders yet")
    remote.mkdir("x/In")

    for old, new in (("x", "y"), ("x/In", "y/in"), ("x/In", "x/Out"), ("x", "x/in"),
                     ("", "")):  # the connector's own folder: never
        with pytest.raises(ValueError):
            source.respell_folder(old, new)

    assert stored_names(remote) == {"x"} and stored_names(remote, "x") == {"In"}


def test_smb_a_folder_holding_an_open_file_is_respelled_once_it_is_closed(samba):
    """The file server refuses to rename a folder while a file below is open (someone reading
    it, one of our transfers): a failure tried again later, and then it is respelled."""
    remote = SmbRemote(samba)
    try:
        remote.put("Docs/a.txt", b"being read")
        source, reader = remote.make_source(), remote.make_source()
        with reader.open_read("Docs/a.txt"):
            with pytest.raises(errors.FileInUse) as info:
                source.respell_folder("Docs", "docs")
            assert not info.value.permanent and stored_names(remote) == {"Docs"}

        source.respell_folder("Docs", "docs")
        assert stored_names(remote) == {"docs"}
    finally:
        remote.cleanup()


# --- SharePoint: listings from a saved delta position, the DELETE's condition ---------------

def test_a_listing_from_a_saved_position_reports_the_same_empty_folders(graph, sp):
    sp.mkdir("stays/empty")
    sp.put("emptied/last.txt", b"1")
    sp.mkdir("filled")
    sp.put("gone/inner/f.txt", b"2")
    source = sp.make_source()
    first = source.list()
    assert first.empty_folders == {"stays/empty", "filled"}

    sp.delete("emptied/last.txt")  # a deleted child: its folder is empty now
    sp.put("filled/new.txt", b"3")  # a new child: no longer empty
    sp.delete("gone")  # a deleted subtree: none of it listed
    sp.mkdir("new/one")
    sp.rename("stays/empty", "moved/empty")  # renamed: empty under its new path
    graph.reset_counts()
    second = source.list(copy.deepcopy(first.cursor))

    assert set(graph.counts()) == {"delta"} and not second.resynced  # the changes alone
    assert second.empty_folders == {"emptied", "new/one", "moved/empty", "stays"}
    assert second.empty_folders == sp.make_source().list().empty_folders  # = a full listing


def test_a_package_is_no_empty_folder():
    """A OneNote notebook (the `package` facet) is neither a file nor a folder that travels."""
    from shared.sources.sharepoint import delta
    from shared.sources.sharepoint.delta_listing import DeltaListing

    items: dict[str, dict] = {}
    delta.apply(items, [{"id": "R", "root": {}, "folder": {"childCount": 2}},
                        {"id": "N", "name": "Notes", "package": {"type": "oneNote"},
                         "parentReference": {"id": "R"}},
                        {"id": "E", "name": "empty", "folder": {"childCount": 0},
                         "parentReference": {"id": "R"}}])
    assert DeltaListing(items, set(), {}).empty_folders() == {"empty"}


def test_a_position_saved_before_folders_travelled_is_enumerated_afresh(sp):
    """Such a position holds folders and packages alike as {"d": 1}: it cannot say which
    folders are empty, so the next listing is a full enumeration that can."""
    sp.mkdir("e")
    sp.put("f/x.txt", b"x")
    source = sp.make_source()
    first = source.list()
    legacy = {i: ({"n": v["n"], "p": v["p"], "d": 1} if "f" in v else v)
              for i, v in first.cursor.items.items()}

    again = source.list(DeltaCursor(first.cursor.link, legacy))

    assert again.resynced and again.empty_folders == {"e"} and set(again.entries) == {"f/x.txt"}
    assert not any("d" in v for v in again.cursor.items.values())


def test_a_file_saved_into_the_folder_as_it_is_deleted_keeps_it(graph, sp):
    """childCount said empty; a user saves a file into the folder before our DELETE lands: the
    folder's eTag changed, the If-Match DELETE is refused (412), the folder stays with it."""
    sp.mkdir("p/empty")
    graph.put_during_next_delete(sp.drive, "p/empty", "late.txt", b"just saved")

    assert sp.make_source().remove_folder_if_empty("p/empty") is False

    assert sp.read("p/empty/late.txt") == b"just saved" and sp.exists("p")


def test_a_respelled_folder_from_a_saved_position_keeps_its_id(graph, sp):
    """Delta sends the renamed folder alone: its files are listed under the new spelling all
    the same (paths come from parent ids), and the folder is the same item."""
    sp.put("Docs/Sub/a.txt", b"a")
    sp.mkdir("Docs/Empty")
    folder_id = graph.item(sp.drive, "Docs").id
    source = sp.make_source()
    first = source.list()

    source.respell_folder("Docs", "docs")
    again = source.list(copy.deepcopy(first.cursor))

    assert not again.resynced and set(again.entries) == {"docs/Sub/a.txt"}
    assert again.entries["docs/Sub/a.txt"].file_id == first.entries["Docs/Sub/a.txt"].file_id
    assert again.empty_folders == {"docs/Empty"}
    folder = graph.item(sp.drive, "docs")
    assert folder.id == folder_id and folder.name == "docs"
