"""A SharePoint connector's saved delta position and items, against the real Redis: what the
scanner saves is what its next run reads back, whatever the items hold, and positions saved
before items were packed still read."""
import asyncio
import json
from base64 import b32encode
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.sources.sharepoint.delta_listing import DeltaListing
from shared.store.binary_records import b36
from shared.store.delta_positions import pack_item, unpack_item
from shared.sync.model import TOMBSTONE, DeltaCursor, IndexedFile, IndexRecord


def graph_id(n: int) -> str:
    """An id as Graph gives SharePoint's: "01" and 32 base-32 characters."""
    return "01" + b32encode(n.to_bytes(20, "big")).decode()


ROOT, FOLDER = graph_id(1), graph_id(2)
F1, F2, F3, F4 = (graph_id(n) for n in (3, 4, 5, 6))
ITEMS: dict[str, dict] = {
    ROOT: {"r": 1},
    FOLDER: {"n": "Finance | 2026", "p": ROOT, "f": 1},
    graph_id(7): {"n": "Notes", "p": FOLDER, "k": 1},
    F1: {
        "n": "Q3 report.docx", "p": FOLDER, "s": 48213, "m": 1_764_000_000 * 10**9,
        "t": "aGVsbG8gd29ybGQhISEhISEhISEhISE=", "o": "alice@contoso.com"},
    F2: {  # a fraction of a second, no hash, no owner
        "n": "näme, with | bars.txt", "p": FOLDER, "s": 0, "m": 1_764_000_000_123_456_000,
        "t": None, "o": None},
    F3: {  # before 1970; an orphan (no parent id)
        "n": "old.txt", "p": None, "s": 7, "m": -86_400 * 10**9 - 5, "t": "c:{X},1",
        "o": "bob@contoso.com"},
    F4: {  # fields that cannot be packed: kept as JSON
        "n": "odd.txt", "p": "a|b", "s": 1, "m": 0, "t": "", "o": "x|y@contoso.com"},
    "01LEGACY00000000000000000000000005": {"n": "Old folder", "p": ROOT, "d": 1},
    "D4648F06C91D9D3D!54927": {  # other ids are kept as they are
        "n": "personal.txt", "p": "*odd", "s": 3, "m": 10**9, "t": None, "o": None},
    "*odd": {"n": "Odd", "p": ROOT, "f": 1},
}


async def test_saved_items_read_back_as_they_were(state):
    positions = state.delta_positions
    await positions.save("c1", DeltaCursor(), DeltaCursor("https://graph/delta?token=1", ITEMS))

    back = await positions.cursor("c1")
    assert back.link == "https://graph/delta?token=1"
    assert back.items == ITEMS

    changed = dict(ITEMS)
    changed[F1] = dict(
        ITEMS[F1], s=50000, n="Q3 report v2.docx")
    del changed[F2]
    await positions.save("c1", back, DeltaCursor("https://graph/delta?token=2", changed))
    again = await positions.cursor("c1")
    assert (again.link, again.items) == ("https://graph/delta?token=2", changed)


async def test_when_the_items_were_last_listed_in_full_is_kept(state):
    positions = state.delta_positions
    listed = 1_764_000_000.25
    await positions.save("c1", DeltaCursor(), DeltaCursor("https://graph/delta?token=1", ITEMS,
                                                          listed))
    back = await positions.cursor("c1")
    assert back.full_at == listed
    await positions.save("c1", back, DeltaCursor("https://graph/delta?token=2", ITEMS, listed))
    assert (await positions.cursor("c1")).full_at == listed  # changes since: the same age

    await positions.forget("c1")  # another library: from scratch, no age
    assert await positions.cursor("c1") == DeltaCursor()


async def test_a_position_saved_before_its_age_was_kept_starts_the_clock(state, monkeypatch):
    await state.r.set(state.key("delta", "c1"), "https://graph/delta?token=old")
    monkeypatch.setattr("shared.store.delta_positions.time.time", lambda: 1_764_000_000.0)
    back = await state.delta_positions.cursor("c1")
    assert back.full_at == 1_764_000_000.0  # not due at once: every such library together
    await state.delta_positions.save("c1", back, back)
    monkeypatch.undo()
    assert (await state.delta_positions.cursor("c1")).full_at == 1_764_000_000.0


def listed(cursor: DeltaCursor, items: dict) -> DeltaCursor:
    """A full listing of `items` as the SharePoint source makes it, the index read page by
    page from a thread (its walk's), and the cursor it returns."""
    listing = DeltaListing(dict(items), set(), {})
    list(listing.listed())
    for page in cursor.pages():
        listing.from_index(page)
    return DeltaCursor("https://graph/delta?token=1", listing.position(),
                       vouched=listing.vouched, folders=listing.folders())


async def test_files_the_index_vouches_for_are_kept_once_in_the_index(state):
    """A file synced and unchanged costs Redis once: its index record, which the listing reads
    page by page; a file the listing no longer has leaves a tombstone while its record lives."""
    path = "Finance | 2026/Q3 report.docx"
    f1 = ITEMS[F1]
    await state.put_index("c1", path, IndexRecord(
        f1["s"], f1["m"], F1, "u-alice", "alice@contoso.com", "0" * 32, 1.5,
        content_tag=f1["t"]))
    await state.put_index("c1", "Finance | 2026/", IndexRecord(  # a folder's: never a file
        0, 0, FOLDER, "system", None, None, 1.5))
    positions = state.delta_positions
    first = await positions.cursor("c1")
    pages = await asyncio.to_thread(lambda: list(first.pages()))
    assert first.items == {} and {k: v for page in pages for k, v in page.items()} == {
        F1: IndexedFile(path, f1["s"], f1["m"], f1["t"], "alice@contoso.com")}
    with pytest.raises(RuntimeError):  # never on the loop that serves Redis: it would wait
        list(first.pages())

    tree = {k: v for k, v in ITEMS.items() if k not in (F3, F4)}  # not orphans
    await positions.save("c1", first, await asyncio.to_thread(listed, first, tree))
    back = await positions.cursor("c1")
    assert back.items == {k: v for k, v in tree.items() if k != F1}

    gone = {k: v for k, v in tree.items() if k != F1}  # deleted in the library, still indexed
    await positions.save("c1", back, await asyncio.to_thread(listed, back, gone))
    assert (await positions.cursor("c1")).items == gone | {F1: TOMBSTONE}


async def test_items_saved_as_json_before_still_read(state):
    items = state.key("items", "c1")
    await state.r.hset(items, mapping={k: json.dumps(v) for k, v in ITEMS.items()})
    await state.r.set(state.key("delta", "c1"), "https://graph/delta?token=old")

    back = await state.delta_positions.cursor("c1")
    assert back.items == ITEMS


async def test_whole_second_mtimes_ending_like_the_old_suffix_read_back_as_listed(state):
    """1796464319 s is "tpkgqn" in base 36: its last digit was the ns form's suffix, and it read
    back as 49901790 ns (1970): the file never matched its index record again (kept in the
    position for good, its moves recorded with that mtime)."""
    whole = {"n": "k.txt", "p": FOLDER, "s": 4, "m": 1_796_464_319 * 10**9,
             "t": "aygDHOgAAAAAAAAABAAAAAAAAAA=", "o": "alice@contoso.com"}
    assert pack_item(whole).split("|")[1] == "tpkgqn"
    await state.r.hset(state.key("items", "c1"), mapping={
        F1: pack_item(whole), ROOT: pack_item(ITEMS[ROOT]), FOLDER: pack_item(ITEMS[FOLDER])})
    assert (await state.delta_positions.cursor("c1")).items[F1] == whole


def test_mtimes_packed_before_the_ns_suffix_changed_still_read():
    """Written with "n" after an ns mtime: read as ns where the number is one (1970's first 17
    minutes aside), as whole seconds where it is a seconds form that ended in "n"."""
    ns = 1_764_000_000_123_456_000
    assert unpack_item(f"5|{b36(ns)}n||||a.txt")["m"] == ns
    assert unpack_item("5|tpkgqn||||a.txt")["m"] == 1_796_464_319 * 10**9


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_opt = st.none() | _text
_mtime = st.integers(-2**62, 2**62) | st.integers(-2**32, 2**32).map(lambda s: s * 10**9)
_file = st.fixed_dictionaries({"n": _text, "p": _opt, "s": st.integers(-1, 2**63),
                               "m": _mtime, "t": _opt, "o": _opt})
_folder = st.fixed_dictionaries({"n": _text, "p": _opt}).flatmap(
    lambda d: st.sampled_from(("f", "k", "d")).map(lambda k: {**d, k: 1}))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_file, _folder, st.just({"r": 1}), st.just(TOMBSTONE)))
def test_every_item_packs_and_reads_back_equal(item):
    assert unpack_item(pack_item(item)) == item
    assert unpack_item(pack_item(item, {}), {}) == item  # with the parents converted so far



async def test_files_put_back_in_a_position_read_back_as_their_records(state):
    """A rejected deletion drops the records of files the position left to them: the files are
    put back first (under their folders as saved), but never over what the position holds."""
    positions = state.delta_positions
    tree = {ROOT: ITEMS[ROOT], FOLDER: ITEMS[FOLDER], F2: TOMBSTONE}
    await positions.save("c1", DeltaCursor(), DeltaCursor("https://graph/delta?token=1", tree))
    f1 = ITEMS[F1]
    rec = IndexRecord(f1["s"], f1["m"], F1, "u-alice", "alice@contoso.com", "0" * 32, 1.5,
                      content_tag=f1["t"])
    await positions.keep_files("c1", {
        "Finance | 2026/Q3 report.docx": rec,
        "Finance | 2026/gone.txt": replace(rec, file_id=F2),  # deleted in the library
        "Elsewhere/x.txt": replace(rec, file_id=F3),  # a folder the position does not hold
        "Finance | 2026/": replace(rec, file_id=FOLDER)})  # a folder's own record
    assert (await positions.cursor("c1")).items == tree | {F1: ITEMS[F1]}

    await positions.forget("c1")
    await positions.keep_files("c1", {"Finance | 2026/Q3 report.docx": rec})
    assert await positions.cursor("c1") == DeltaCursor()  # no position: a full listing next


async def test_the_index_comes_page_by_page_to_the_listings_thread(state):
    """A library's index is read a page at a time (HSCAN) while the listing goes on in its
    thread: every file once (a page may repeat one), never the whole index in one reply."""
    n = 2500
    for i in range(n):
        await state.put_index("c1", f"d/f{i:05d}.txt", IndexRecord(
            i, 10**18 + i, graph_id(1000 + i), "u-alice", "alice@contoso.com", "0" * 32, 1.5,
            content_tag="qxh="))
    cursor = await state.delta_positions.cursor("c1")
    pages = await asyncio.to_thread(lambda: list(cursor.pages()))
    assert len(pages) > 1 and max(map(len, pages)) < n
    files = {k: v for page in pages for k, v in page.items()}
    assert len(files) == n
    assert files[graph_id(1007)] == IndexedFile("d/f00007.txt", 7, 10**18 + 7, "qxh=",
                                                "alice@contoso.com")


async def test_a_full_enumeration_kept_page_by_page_goes_on_from_its_last_page(state):
    """What a scan killed mid-enumeration left: the link after the last page kept and the
    items the pages gave (a page's deletions taken out), for the same library only, until the
    position is saved; a new enumeration's first page replaces it."""
    positions = state.delta_positions
    kept = (await positions.cursor("c1")).enumeration
    assert kept is not None and await kept.resume("drive-1") is None
    first = {ROOT: ITEMS[ROOT], FOLDER: ITEMS[FOLDER], F1: ITEMS[F1], F4: ITEMS[F4]}
    await kept.keep("drive-1", "https://graph/delta?token=p1", first, [], first=True)
    await kept.keep("drive-1", "https://graph/delta?token=p2", {F2: ITEMS[F2]}, [F1])
    assert await kept.resume("drive-1") == ("https://graph/delta?token=p2", {
        ROOT: ITEMS[ROOT], FOLDER: ITEMS[FOLDER], F2: ITEMS[F2], F4: ITEMS[F4]})
    assert await kept.resume("drive-2") is None  # the connector points at another library

    # From the listing's own thread and event loop, as the source calls it.
    assert await asyncio.to_thread(asyncio.run, kept.resume("drive-1")) == \
        await kept.resume("drive-1")

    await kept.keep("drive-2", "https://graph/delta?token=q1", {ROOT: ITEMS[ROOT]}, [],
                    first=True)
    assert await kept.resume("drive-2") == ("https://graph/delta?token=q1", {ROOT: ITEMS[ROOT]})

    await positions.save("c1", DeltaCursor(), DeltaCursor("https://graph/delta?token=d1", ITEMS))
    assert await kept.resume("drive-2") is None  # the run's position saved: no longer needed


async def test_an_enumeration_kept_goes_with_its_connector_or_library(state):
    positions = state.delta_positions
    for forget in (positions.forget, state.delete_connector):
        kept = (await positions.cursor("c1")).enumeration
        assert kept is not None
        await kept.keep("drive-1", "https://graph/delta?token=p1", {ROOT: ITEMS[ROOT]}, [],
                        first=True)
        await forget("c1")
        assert await kept.resume("drive-1") is None
        assert [k async for k in state.r.scan_iter(f"{state.ns}:*")] == []


async def test_a_save_that_died_midway_leaves_the_position_saved_before(state):
    """A save stages its changed items first and applies them with the link in one script: a
    scanner killed while staging leaves the position as it was, and the next save stages
    afresh (what the dead one staged is never applied)."""
    positions = state.delta_positions
    await positions.save("c1", DeltaCursor(), DeltaCursor("https://graph/delta?token=1", ITEMS))
    died = dict(ITEMS[F1], s=1)  # staged by a save that never closed
    left = state.key("items_staged", "c1", "0123456789abcdef")
    await state.r.hset(left, F1, pack_item(died))
    back = await positions.cursor("c1")
    assert (back.link, back.items) == ("https://graph/delta?token=1", ITEMS)

    changed = dict(ITEMS)
    changed[F2] = dict(ITEMS[F2], s=99)
    await positions.save("c1", back, DeltaCursor("https://graph/delta?token=2", changed))
    again = await positions.cursor("c1")
    assert (again.link, again.items) == ("https://graph/delta?token=2", changed)
    staged = [k async for k in state.r.scan_iter(f"{state.ns}:items_staged:*")]
    assert staged == [left]  # this save's own went with it; the dead one's is left


async def test_a_first_sync_of_thousands_of_items_saves_them_all(state):
    """Staged a batch at a time, applied by one script (several HSCAN pages of a big hash)."""
    positions = state.delta_positions
    items = dict(ITEMS)
    items.update({graph_id(10_000 + i): dict(ITEMS[F1], n=f"f{i}.docx") for i in range(2500)})
    await positions.save("c1", DeltaCursor(), DeltaCursor("https://graph/delta?token=1", items))
    back = await positions.cursor("c1")
    assert back.items == items
    fewer = {k: v for k, v in items.items() if k not in (F1, graph_id(10_007))}
    await positions.save("c1", back, DeltaCursor("https://graph/delta?token=2", fewer))
    assert (await positions.cursor("c1")).items == fewer
