"""A SharePoint position keeps the folders and only the files the index does not vouch for; the
next listing rebuilds the rest from the index a page at a time (`DeltaListing`), and the run's
changes put back what they acted on (`DeltaCursor.stored`). Table tests of both halves, and of
the two together: what is saved and rebuilt is what was listed."""
from __future__ import annotations

import pytest

from shared.sources.sharepoint.delta_listing import DeltaListing
from shared.sync.model import TOMBSTONE, DeltaCursor, IndexedFile, IndexRecord, folder_ids

ROOT, DOCS, SUB = "root-id", "docs-id", "sub-id"
FOLDERS = {ROOT: {"r": 1}, DOCS: {"n": "Docs", "p": ROOT, "f": 1},
           SUB: {"n": "Sub", "p": DOCS, "f": 1}}
MTIME = 1_764_000_000 * 10**9


def item(name: str, parent: str, size: int = 5, owner: str | None = "a@contoso.com") -> dict:
    return {"n": name, "p": parent, "s": size, "m": MTIME, "t": "qxh=", "o": owner}


def indexed(path: str, size: int = 5, owner: str | None = "a@contoso.com") -> IndexedFile:
    return IndexedFile(path, size, MTIME, "qxh=", owner)


def record(file_id: str, size: int = 5, owner: str | None = "a@contoso.com") -> IndexRecord:
    return IndexRecord(size, MTIME, file_id, "u-a", owner, "0" * 32, 1.5, content_tag="qxh=")


LISTED = FOLDERS | {"f1": item("a.txt", DOCS), "f2": item("b.txt", SUB),
                    "f3": item("top.txt", ROOT)}
INDEX = {"f1": indexed("Docs/a.txt"), "f2": indexed("Docs/Sub/b.txt"), "f3": indexed("top.txt")}


def run(items: dict, index: dict, *, full: bool = False, gone: set[str] | None = None,
        pages: int = 1) -> tuple[dict, DeltaListing]:
    """One listing: a full enumeration (`items` are the library's), or the changes applied to a
    saved position (`items`; `gone`: ids they deleted), the index read in `pages` pages."""
    items = dict(items)
    listing = DeltaListing(items, set(gone or ()), {} if full else folder_ids(items))
    entries = {path: e for part in listing.listed(chunk=2) for path, e in part.items()}
    ids = list(index)
    for i in range(pages):
        entries.update(listing.from_index({k: index[k] for k in ids[i::pages]}))
    return entries, listing


def saved(items: dict, index: dict, acted: dict | None = None, **kw) -> dict:
    _, listing = run(items, index, **kw)
    cursor = DeltaCursor("link", listing.position(), vouched=listing.vouched,
                         folders=listing.folders())
    return cursor.stored(acted or {})


LISTED_ENTRIES = run(LISTED, {}, full=True)[0]


def test_files_the_index_vouches_for_are_left_to_it_and_folders_are_kept():
    assert saved(LISTED, INDEX, full=True) == FOLDERS


@pytest.mark.parametrize("index, why", [
    ({"f1": indexed("Docs/a.txt", size=4)}, "another version than the record's (failed, new)"),
    ({"f1": indexed("Docs/old.txt")}, "another path than the record's (moved, not yet synced)"),
    ({"f1": indexed("Docs/a.txt", owner="b@contoso.com")}, "another owner"),
    ({}, "no record at all (a new file, a name the target cannot hold)"),
])
def test_a_file_the_index_does_not_vouch_for_is_kept(index, why):
    assert saved(LISTED, index, full=True)["f1"] == LISTED["f1"], why


def test_owners_are_named_for_the_files_whose_record_does_not_name_the_same():
    """The scan labels a file the listing does not name with its record's owner: a full
    listing names only the files whose record names another owner, or none."""
    index = INDEX | {"f1": indexed("Docs/a.txt", owner=None),  # a file ScaiDrive wrote
                     "f2": indexed("Docs/Sub/b.txt", owner="b@contoso.com")}  # not vouched
    _, listing = run(LISTED, index, full=True, pages=2)
    assert listing.owners == {"Docs/a.txt": "a@contoso.com", "Docs/Sub/b.txt": "a@contoso.com"}
    _, listing = run(LISTED, INDEX | {"f3": INDEX["f3"]}, full=True)
    assert listing.owners == {}


def test_a_record_without_an_owner_vouches_whatever_owner_the_source_names():
    # a file ScaiDrive wrote: the source names the application, the record no one
    index = INDEX | {"f1": indexed("Docs/a.txt", owner=None)}
    assert saved(LISTED, index, full=True) == FOLDERS
    entries, listing = run(FOLDERS, index)
    assert entries == LISTED_ENTRIES and "Docs/a.txt" not in listing.owners  # the record's


@pytest.mark.parametrize("full", [True, False], ids=["listed", "rebuilt"])
def test_a_file_the_run_acted_on_is_kept_whatever_its_record_says(full):
    # its job may drop the record while the file stays: the next listings must still have it
    items = LISTED if full else FOLDERS
    index = INDEX | {"f9": indexed("gone.txt")}  # deleted: its change is a deletion
    acted = {"Docs/a.txt": record("f1"), "Docs/Sub/": record(SUB), "gone.txt": record("f9")}
    assert saved(items, index, acted, full=full, gone={"f9"}) == \
        FOLDERS | {"f1": LISTED["f1"], "f9": TOMBSTONE}


def test_an_indexed_file_no_longer_listed_leaves_a_tombstone():
    listed = {k: v for k, v in LISTED.items() if k != "f2"}
    assert saved(listed, INDEX, full=True) == FOLDERS | {"f2": TOMBSTONE}
    # and once its record is gone, no tombstone
    assert saved(listed, {k: v for k, v in INDEX.items() if k != "f2"}, full=True) == FOLDERS


@pytest.mark.parametrize("pages", [1, 2, 3])
def test_each_left_out_file_is_rebuilt_under_its_folder_page_by_page(pages):
    entries, listing = run(FOLDERS, INDEX, pages=pages)
    assert entries == LISTED_ENTRIES
    assert listing.position() == FOLDERS and listing.owners == {}


def test_what_the_position_kept_wins_over_the_index_and_tombstones_stay_gone():
    newer = item("a.txt", DOCS, size=9)
    entries, listing = run(FOLDERS | {"f1": newer, "f2": TOMBSTONE}, INDEX)
    assert set(entries) == {"Docs/a.txt", "top.txt"} and entries["Docs/a.txt"].size == 9
    assert listing.position() == FOLDERS | {"f1": newer, "f2": TOMBSTONE}  # still indexed
    assert saved(FOLDERS | {"f2": TOMBSTONE}, {}) == FOLDERS  # its record gone: forgotten


def test_a_file_the_changes_deleted_is_not_rebuilt_and_leaves_a_tombstone():
    entries, listing = run(FOLDERS, INDEX, gone={"f2"})
    assert set(entries) == {"Docs/a.txt", "top.txt"}
    assert listing.position() == FOLDERS | {"f2": TOMBSTONE}


def test_a_record_whose_folder_the_position_does_not_hold_is_not_rebuilt():
    entries, listing = run(FOLDERS, {"f9": indexed("Gone/x.txt")} | INDEX)
    assert entries == LISTED_ENTRIES
    assert listing.position() == FOLDERS | {"f9": TOMBSTONE}


def test_a_renamed_folder_moves_the_files_rebuilt_under_it_and_they_are_kept():
    """A renamed folder arrives alone: its files are rebuilt at their new paths, named with
    their owners, and kept in the position until their records say the new path."""
    renamed = FOLDERS | {DOCS: {"n": "Archive", "p": ROOT, "f": 1}}
    listing = DeltaListing(dict(renamed), set(), folder_ids(FOLDERS))  # folders as saved
    entries = next(listing.listed()) | listing.from_index(INDEX)
    assert set(entries) == {"Archive/a.txt", "Archive/Sub/b.txt", "top.txt"}
    assert entries["Archive/a.txt"].file_id == "f1"
    assert listing.owners == {"Archive/a.txt": "a@contoso.com",
                              "Archive/Sub/b.txt": "a@contoso.com"}
    assert listing.position() == renamed | {"f1": item("a.txt", DOCS),
                                            "f2": item("b.txt", SUB)}


def test_a_folder_no_item_is_in_is_empty_whether_listed_or_rebuilt():
    entries, listing = run(FOLDERS | {"e": {"n": "E", "p": ROOT, "f": 1}}, INDEX)
    assert listing.empty_folders() == {"E"}
    _, listing = run(FOLDERS, {"f3": INDEX["f3"]})
    assert listing.empty_folders() == {"Docs/Sub"}


@pytest.mark.parametrize("index", [INDEX, {}, {"f1": indexed("Docs/a.txt", size=1)},
                                   INDEX | {"f7": indexed("Docs/deleted.txt")}])
def test_saved_then_listed_again_is_the_listing(index):
    """Whatever the index held when the listing began, the next run lists what the listing
    had (the tombstone's file stays gone), and saves the same position again."""
    position = saved(LISTED, index, full=True)
    entries, listing = run(position, index)
    assert entries == LISTED_ENTRIES
    assert listing.position() == position
