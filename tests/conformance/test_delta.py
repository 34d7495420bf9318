"""SharePoint delta listings through the real msgraph-sdk against the Graph emulator: only
changes are asked for, paths are rebuilt from parent ids, an expired position resyncs."""
from __future__ import annotations

import copy
import json
import time

from shared.sync.model import DeltaCursor


def ids(listing) -> dict[str, str]:
    return {p: e.file_id for p, e in listing.entries.items()}


# --- delta ------------------------------------------------------------------------------

def test_incremental_list_is_the_full_listing_from_delta_calls_only(graph, sp):
    for rel in ("a/keep.txt", "a/modify.txt", "a/rename.txt", "b/delete.txt", "c/d/deep.txt"):
        sp.put(rel, rel.encode())
    source = sp.make_source()
    first = source.list()
    assert first.complete and not first.resynced and first.cursor.link
    saved = copy.deepcopy(first.cursor)

    sp.put("c/new.txt", b"new")
    sp.modify("a/modify.txt", b"modified!")
    sp.rename("a/rename.txt", "c/renamed.txt")
    sp.delete("b/delete.txt")
    graph.reset_counts()
    second = source.list(first.cursor)

    # One page of changes (a full enumeration would take 2 at 7 items a page); no walk, no GETs.
    assert graph.counts() == {"delta": 1}
    assert first.cursor == saved  # the caller's cursor is left as it was
    assert set(second.entries) == {"a/keep.txt", "a/modify.txt", "c/renamed.txt",
                                   "c/d/deep.txt", "c/new.txt"}
    assert second.entries == sp.make_source().list().entries  # = a full enumeration
    moved, was = second.entries["c/renamed.txt"], first.entries["a/rename.txt"]
    assert (moved.file_id, moved.content_tag) == (was.file_id, was.content_tag)  # a move
    assert second.entries["a/modify.txt"].size == 9
    assert second.entries["a/modify.txt"].content_tag != first.entries["a/modify.txt"].content_tag
    assert second.complete and not second.resynced and second.cursor.link != first.cursor.link


def test_cursor_survives_json_and_a_new_source(graph, sp):
    """The scanner stores the cursor as JSON and may resume it in another process."""
    sp.put("x/one.txt", b"1")
    first = sp.make_source().list()
    stored = json.loads(json.dumps({"link": first.cursor.link, "items": first.cursor.items}))
    sp.put("x/two.txt", b"2")
    graph.reset_counts()

    second = sp.make_source().list(DeltaCursor(stored["link"], stored["items"]))

    assert set(second.entries) == {"x/one.txt", "x/two.txt"}
    assert graph.counts()["delta"] == 1
    again = sp.make_source().list(second.cursor)  # nothing changed: the same listing
    assert again.entries == second.entries


def test_folder_rename_moves_every_descendant_and_keeps_file_ids(graph, sp):
    for rel in ("proj/a.txt", "proj/sub/b.txt", "proj/sub/deeper/c.txt", "other/d.txt"):
        sp.put(rel, rel.encode())
    source = sp.make_source()
    first = source.list()

    sp.rename("proj", "archive/proj-2023")  # only the folder changes on the server
    graph.reset_counts()
    second = source.list(first.cursor)

    assert graph.counts() == {"delta": 1}  # incremental: the children were not re-sent

    assert ids(second) == {
        "archive/proj-2023/a.txt": first.entries["proj/a.txt"].file_id,
        "archive/proj-2023/sub/b.txt": first.entries["proj/sub/b.txt"].file_id,
        "archive/proj-2023/sub/deeper/c.txt": first.entries["proj/sub/deeper/c.txt"].file_id,
        "other/d.txt": first.entries["other/d.txt"].file_id}
    assert second.entries["archive/proj-2023/a.txt"].content_tag == \
        first.entries["proj/a.txt"].content_tag


def test_deleted_folder_drops_its_subtree(graph, sp):
    for rel in ("gone/x.txt", "gone/deep/y.txt", "stay.txt"):
        sp.put(rel, b"z")
    source = sp.make_source()
    first = source.list()
    gone_ids = {e.file_id for p, e in first.entries.items() if p.startswith("gone/")}

    sp.delete("gone")
    graph.reset_counts()
    second = source.list(first.cursor)

    assert graph.counts() == {"delta": 1}

    assert set(second.entries) == {"stay.txt"}
    assert not gone_ids & set(second.cursor.items)  # the cursor does not keep the dead


def test_expired_delta_token_resyncs_to_the_same_listing(graph, sp):
    sp.put("f.txt", b"f")
    source = sp.make_source()
    first = source.list()
    sp.put("g/new.txt", b"new")
    graph.expire_delta_tokens()

    second = source.list(first.cursor)

    assert second.resynced and second.complete
    assert set(second.entries) == {"f.txt", "g/new.txt"}
    assert second.entries == sp.make_source().list().entries
    third = source.list(second.cursor)  # and the new position works
    assert not third.resynced and third.entries == second.entries


def test_a_full_enumeration_dates_its_items_and_sees_what_the_feed_missed(graph, sp):
    """The scanner's periodic full listing (SCAIDRIVE_FULL_LISTING_DAYS) rests on this: changes
    keep the age of the last full enumeration; one from scratch finds what they missed."""
    sp.put("a/keep.txt", b"keep")
    gone = sp.put("a/gone.txt", b"gone")
    source = sp.make_source()
    before = time.time()
    first = source.list()
    assert before <= first.cursor.full_at <= time.time()

    graph.delete(sp.drive, "a/gone.txt")
    graph.hide_from_delta(gone, graph.put_file(sp.drive, "a/unseen.txt", b"unseen"))
    sp.put("a/seen.txt", b"seen")
    second = source.list(first.cursor)
    assert set(second.entries) == {"a/keep.txt", "a/gone.txt", "a/seen.txt"}  # the feed missed
    assert second.cursor.full_at == first.cursor.full_at

    third = source.list(DeltaCursor())
    assert set(third.entries) == {"a/keep.txt", "a/unseen.txt", "a/seen.txt"}
    assert third.cursor.full_at > first.cursor.full_at and not third.resynced


def test_missing_library_fails_the_root_with_not_found(graph, sp):
    sp.put("f.txt", b"f")
    first = sp.make_source().list()
    sp.remove_base()

    listing = sp.make_source().list(first.cursor)

    assert not listing.complete and listing.entries == {} and listing.cursor is None
    assert [(f.path, f.cause) for f in listing.failures] == [("", "not_found")]


# --- owners -----------------------------------------------------------------------------------

def test_owners_are_the_creators_emails(graph, sp):
    graph.put_file(sp.drive, "a.txt", b"a", created_by_email="alice@contoso.com")
    graph.put_file(sp.drive, "a.txt", b"a2", modified_by_email="carol@contoso.com")
    graph.put_file(sp.drive, "d/b.txt", b"b", created_by_email="bob@contoso.com")
    source = sp.make_source()
    source.list()
    graph.reset_counts()

    assert source.owners(["a.txt", "d/b.txt"]) == {"a.txt": "alice@contoso.com",
                                                    "d/b.txt": "bob@contoso.com"}
    assert graph.counts() == {}  # known from the listing: no round trip
    sp.put("later.txt", b"l", owner="dave")  # created after the listing: looked up
    graph.reset_counts()
    assert source.owners(["later.txt", "missing.txt", "a.txt"]) == {
        "later.txt": "dave@contoso.com", "missing.txt": None, "a.txt": "alice@contoso.com"}
    # a.txt's was given already: the listing's owners are not kept past that (a scan asks once
    # a path; after a first sync the source would hold every file's till the next run)
    assert sum(graph.counts().values()) == 3
