"""A delta listing built as it streams: the drive's items after this run's changes, then the
connector's index a page at a time, so that a scan holds the folders and the run's changes, not
the library (docs/PERFORMANCE.md §24).

A saved position holds the folders and only the files the index does not vouch for (see
shared/sources/sharepoint/delta.py). With the changes since applied (`items`, and `gone`: the
ids the changes deleted), the listing is:
- every file `items` holds, at the path its parent chain gives (`listed`);
- then each indexed file the items leave out, rebuilt from its record under its folder as the
  position had it, at that folder's path now (a renamed folder moves its files: its children
  are not re-sent), page by page (`from_index`): never the whole index at once.
A file whose folder is gone (or unknown), or that the changes deleted, is not rebuilt.

The position to save comes out of the same pass (`position`): the folders, the files the index
does not vouch for (another version, path or owner than its record, or no record), a file
rebuilt at another path than its record's, and a tombstone {"x": 1} for each indexed file the
listing no longer has (a held deletion keeps its record: the file must stay gone). Files the
index vouches for are left out; those of them listed from Graph (not rebuilt) are kept aside in
`vouched`, for the run's changes to put back (`DeltaCursor.stored`).

An empty folder (two-way: they travel) is a folder no listed item has for its parent.
A full enumeration (no position) has every file in `items` and rebuilds none: the index then
only says which files are vouched for and which are gone.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import cast

from shared.sync.model import TOMBSTONE, DeltaItem, IndexedFile, SourceEntry, paths_of

CHUNK = 5000  # listed files a part of the walk


class DeltaListing:
    """One run's listing of a drive. `items`: the position's items with the changes applied
    (orphans are dropped from it); `gone`: ids the changes deleted; `before`: the position's
    folder ids by path before the changes (`folder_ids`; empty for a full enumeration)."""

    def __init__(self, items: dict[str, DeltaItem], gone: set[str],
                 before: Mapping[str, str]) -> None:
        self.items, self.gone, self.before = items, gone, before
        for item_id in [i for i, v in items.items() if "x" in v]:
            del items[item_id]  # a tombstone: its file stays gone while its record lives
            gone.add(item_id)
        paths = paths_of(items)
        for item_id in [i for i, path in paths.items() if path is None]:
            del items[item_id], paths[item_id]  # its ancestor was deleted: gone with it
            gone.add(item_id)
        self.paths = cast(dict[str, str], paths)  # one map: a full enumeration's is the library
        self.parents: set[str | None] = set()
        # By path: the files listed but those whose record names the same owner.
        self.owners: dict[str, str | None] = {}
        self.vouched: dict[str, DeltaItem] = {}  # listed from Graph, vouched for by the index
        self.moved: dict[str, DeltaItem] = {}  # rebuilt under a folder renamed since
        self.tombstones: set[str] = set()

    def listed(self, chunk: int = CHUNK) -> Iterator[dict[str, SourceEntry]]:
        """The files `items` holds, by path, `chunk` at a time (all of them before any page of
        the index: that is where the listed items' parents are learnt)."""
        out: dict[str, SourceEntry] = {}
        for item_id, v in self.items.items():
            self.parents.add(v.get("p"))
            if "s" in v:
                path = self.paths[item_id]
                out[path] = SourceEntry(path, v["s"], v["m"], item_id, v["t"])
                self.owners[path] = v["o"]
                if len(out) >= chunk:
                    yield out
                    out = {}
        yield out

    def from_index(self, page: Mapping[str, IndexedFile]) -> dict[str, SourceEntry]:
        """The files of one page of the index the items leave out, rebuilt at their paths now;
        and what the page says of the listed ones (vouched for, or gone)."""
        out: dict[str, SourceEntry] = {}
        for item_id, was in page.items():
            v = self.items.get(item_id)
            if v is not None:
                self._compare(item_id, v, was)
            elif item_id in self.gone:
                self.tombstones.add(item_id)
            elif (entry := self._rebuilt(item_id, was)) is not None:
                out[entry.path] = entry
            else:
                self.tombstones.add(item_id)  # its folder is gone
        return out

    def _compare(self, item_id: str, v: DeltaItem, was: IndexedFile) -> None:
        if "s" in v and self.paths[item_id] == was.path and \
                (v["s"], v["m"], v["t"]) == was[1:4] and was.owner in (None, v["o"]):
            self.vouched[item_id] = v  # a record without an owner: a file ScaiDrive wrote
            if was.owner == v["o"]:
                self.owners.pop(was.path, None)  # the record names it (a full listing's)

    def _rebuilt(self, item_id: str, was: IndexedFile) -> SourceEntry | None:
        parent, _, name = was.path.rpartition("/")
        parent_id = self.before.get(parent)
        if parent_id is None or (where := self.paths.get(parent_id)) is None:
            return None
        path = f"{where}/{name}" if where else name
        self.parents.add(parent_id)
        if path != was.path:
            self.moved[item_id] = {"n": name, "p": parent_id, "s": was.size,
                                   "m": was.mtime_ns, "t": was.content_tag, "o": was.owner}
            self.owners[path] = was.owner
        return SourceEntry(path, was.size, was.mtime_ns, item_id, was.content_tag)

    def position(self) -> dict[str, DeltaItem]:
        """The items a saved position holds (once every page of the index is in)."""
        out = {i: v for i, v in self.items.items() if i not in self.vouched}
        out.update(self.moved)
        out.update(dict.fromkeys(self.tombstones, TOMBSTONE))
        return out

    def empty_folders(self) -> set[str]:
        """Folders no listed item has for its parent (never the root)."""
        return {path for item_id, path in self.paths.items()
                if path and "f" in self.items[item_id] and item_id not in self.parents}

    def folders(self) -> dict[str, str]:
        """Folder path -> id, as listed now."""
        return {path: i for i, path in self.paths.items() if "s" not in self.items[i]}

