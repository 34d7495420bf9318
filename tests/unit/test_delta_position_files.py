"""A SharePoint position keeps the folders and only the files the index does not vouch for
(`DeltaCursor.kept`); the listing rebuilds the rest from the index (`delta.restore`). Table
tests of both halves, and of the two together: what is saved and rebuilt is what was listed."""
from __future__ import annotations

import pytest

from shared.sources.sharepoint import delta
from shared.sync.model import TOMBSTONE, DeltaCursor, IndexedFile

ROOT, DOCS, SUB = "root-id", "docs-id", "sub-id"
FOLDERS = {ROOT: {"r": 1}, DOCS: {"n": "Docs", "p": ROOT, "f": 1},
           SUB: {"n": "Sub", "p": DOCS, "f": 1}}


def item(name: str, parent: str, size: int = 5, owner: str | None = "a@contoso.com") -> dict:
    return {"n": name, "p": parent, "s": size, "m": 1_764_000_000 * 10**9, "t": "qxh=",
            "o": owner}


def indexed(path: str, size: int = 5, owner: str | None = "a@contoso.com") -> IndexedFile:
    return IndexedFile(path, size, 1_764_000_000 * 10**9, "qxh=", owner)


LISTED = FOLDERS | {"f1": item("a.txt", DOCS), "f2": item("b.txt", SUB),
                    "f3": item("top.txt", ROOT)}
PATHS = {"f1": "Docs/a.txt", "f2": "Docs/Sub/b.txt", "f3": "top.txt"}
INDEX = {"f1": indexed("Docs/a.txt"), "f2": indexed("Docs/Sub/b.txt"), "f3": indexed("top.txt")}


def kept(index: dict, acted=(), items: dict = LISTED, paths: dict = PATHS) -> dict:
    return DeltaCursor("link", dict(items), file_paths=paths).kept(index, acted)


def test_files_the_index_vouches_for_are_left_to_it_and_folders_are_kept():
    assert kept(INDEX) == FOLDERS


@pytest.mark.parametrize("index, why", [
    ({"f1": indexed("Docs/a.txt", size=4)}, "another version than the record's (failed, new)"),
    ({"f1": indexed("Docs/old.txt")}, "another path than the record's (moved, not yet synced)"),
    ({"f1": indexed("Docs/a.txt", owner="b@contoso.com")}, "another owner"),
    ({}, "no record at all (a new file, a name the target cannot hold)"),
])
def test_a_file_the_index_does_not_vouch_for_is_kept(index, why):
    assert kept(index)["f1"] == LISTED["f1"], why


def test_a_record_without_an_owner_vouches_whatever_owner_the_source_names():
    # a file ScaiDrive wrote: the source names the application, the record no one
    index = INDEX | {"f1": indexed("Docs/a.txt", owner=None)}
    assert kept(index) == FOLDERS
    assert restored(FOLDERS, index)["f1"] == dict(LISTED["f1"], o=None)


def test_a_file_the_run_acted_on_is_kept_whatever_its_record_says():
    # its job may drop the record while the file stays: the next listings must still have it
    assert kept(INDEX, acted={"Docs/a.txt"}) == FOLDERS | {"f1": LISTED["f1"]}


def test_an_indexed_file_no_longer_listed_leaves_a_tombstone():
    listed = {k: v for k, v in LISTED.items() if k != "f2"}
    assert kept(INDEX, items=listed) == FOLDERS | {"f2": TOMBSTONE}
    # and once its record is gone, no tombstone
    assert kept({k: v for k, v in INDEX.items() if k != "f2"}, items=listed) == FOLDERS


def restored(saved: dict, index: dict) -> dict:
    items = dict(saved)
    delta.restore(items, index)
    return items


def test_restore_rebuilds_each_left_out_file_under_its_folder():
    assert restored(FOLDERS, INDEX) == LISTED


def test_what_the_position_kept_wins_over_the_index_and_tombstones_stay_gone():
    newer = item("a.txt", DOCS, size=9)
    got = restored(FOLDERS | {"f1": newer, "f2": TOMBSTONE}, INDEX)
    assert got == FOLDERS | {"f1": newer, "f3": LISTED["f3"]}


def test_a_record_whose_folder_the_position_does_not_hold_is_left_to_the_listing():
    got = restored(FOLDERS, {"f9": indexed("Gone/x.txt")} | INDEX)
    assert got == LISTED


@pytest.mark.parametrize("index", [INDEX, {}, {"f1": indexed("Docs/a.txt", size=1)},
                                   INDEX | {"f7": indexed("Docs/deleted.txt")}])
def test_kept_then_restored_is_the_listing(index):
    """Whatever the index held when the listing began, the next run starts from the items
    the listing had (the tombstone's file stays gone)."""
    saved = kept(index)
    assert restored(saved, index) == LISTED
    assert delta.build(restored(saved, index)).entries == delta.build(dict(LISTED)).entries
