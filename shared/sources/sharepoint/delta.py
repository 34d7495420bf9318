"""The delta listing's local state: driveItems by id, and the paths rebuilt from parent ids.
Items are driveItem JSON (dicts): the SDK's model parsing costs ~3 ms an item, an hour for a
library of a million files, where json.loads costs microseconds.

Graph's delta never sends `parentReference.path`, and a renamed or moved folder arrives alone
(its children are not re-sent), so paths can only come from the parent chain of each item.
`DeltaCursor.items` holds one compact, JSON-serialisable dict per item (a drive can hold
millions, and the scanner stores the cursor):
    root:    {"r": 1}
    folder:  {"n": name, "p": parent id, "f": 1}
    package: {"n": name, "p": parent id, "k": 1}  (e.g. a OneNote notebook: neither a file nor
             a folder that travels; never an entry, never an empty folder)
    file:    {"n": name, "p": parent id, "s": size, "m": mtime ns, "t": content tag,
              "o": owner email or None}
Items saved before empty folders travelled have {"n", "p", "d": 1} for folders and packages
alike (`is_legacy`): a position holding one cannot tell which, so it is enumerated afresh.

A saved position holds the folders and only the files the index does not vouch for
(`DeltaCursor.kept`), and a tombstone {"x": 1} for an indexed file no longer there; `restore`
rebuilds the rest from the index before the changes since are applied.

Empty folders (two-way: they travel): a folder item that is no item's parent, whether the
items came from a full enumeration or from a saved position and the changes since (a deleted
child arrives as a `deleted` item and leaves the map), so the listing vouches for them either
way.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from shared.sync.model import IndexedFile, SourceEntry

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def mtime_ns(iso: str | None) -> int:
    """Graph's ISO 8601 UTC time (whole seconds, or a fraction) in ns since 1970."""
    if not iso:
        return 0
    when = datetime.fromisoformat(iso)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


def content_tag(item: dict) -> str | None:
    """quickXorHash where SharePoint computed one, else the cTag (changes with content only)."""
    hashes = (item.get("file") or {}).get("hashes") or {}
    return hashes.get("quickXorHash") or item.get("cTag")


def _email(identity_set: dict | None) -> str | None:
    return ((identity_set or {}).get("user") or {}).get("email")


def owner_email(item: dict) -> str | None:
    return _email(item.get("createdBy")) or _email(item.get("lastModifiedBy"))


def is_file(item: dict) -> bool:
    return "file" in item and "folder" not in item


def entry_of(path: str, item: dict) -> SourceEntry:
    """A file's SourceEntry from a driveItem's JSON (stat, open_read, write)."""
    return SourceEntry(path, item.get("size") or 0, mtime_ns(item.get("lastModifiedDateTime")),
                       item["id"], content_tag(item))


def compact(item: dict) -> dict:
    if "root" in item:
        return {"r": 1}
    parent = (item.get("parentReference") or {}).get("id")
    if "folder" in item:
        return {"n": item.get("name"), "p": parent, "f": 1}
    if not is_file(item):
        return {"n": item.get("name"), "p": parent, "k": 1}
    return {"n": item.get("name"), "p": parent, "s": item.get("size") or 0,
            "m": mtime_ns(item.get("lastModifiedDateTime")), "t": content_tag(item),
            "o": owner_email(item)}


def apply(items: dict[str, dict], page: Iterable[dict]) -> None:
    """One delta page onto `items`, in order: an item sent twice ends as its last version."""
    for item in page:
        if "deleted" in item:
            items.pop(item["id"], None)
        else:
            items[item["id"]] = compact(item)


def restore(items: dict[str, dict], indexed: Mapping[str, IndexedFile]) -> None:
    """A saved position's items made whole again: each indexed file it left out (unchanged
    since synced) rebuilt under the folder of its path, and the tombstones taken out (their
    files stay gone, whatever the index still holds). A file whose folder the position does
    not hold is left out: only a listing places it."""
    folders = {i: v for i, v in items.items() if "s" not in v and "x" not in v}
    folder_ids = {path: i for i, path in _paths(folders).items() if path is not None}
    for item_id, f in indexed.items():
        if item_id not in items:
            parent, _, name = f.path.rpartition("/")
            if (parent_id := folder_ids.get(parent)) is not None:
                items[item_id] = {"n": name, "p": parent_id, "s": f.size, "m": f.mtime_ns,
                                  "t": f.content_tag, "o": f.owner}
    for item_id in [i for i, v in items.items() if "x" in v]:
        del items[item_id]


def has_root(items: dict[str, dict]) -> bool:
    return any(v.get("r") for v in items.values())


def is_legacy(items: dict[str, dict]) -> bool:
    """Saved before folders were told from packages: such a position cannot list folders."""
    return any("d" in v for v in items.values())


def _paths(items: dict[str, dict]) -> dict[str, str | None]:
    """Path of every item ('' for the root); None where the parent chain is broken (an
    ancestor was deleted) or loops."""
    memo: dict[str, str | None] = {i: "" for i, v in items.items() if v.get("r")}
    for start in items:
        chain: list[str] = []
        cur: str | None = start
        while cur not in memo:
            v = None if cur is None else items.get(cur)  # cur None: the last had no parent id
            if cur is None or v is None or len(chain) > len(items):
                memo.update(dict.fromkeys(chain))
                break
            chain.append(cur)
            cur = v.get("p")
        else:
            base = memo[cur]
            for cid in reversed(chain):
                base = None if base is None else f"{base}/{items[cid]['n']}".lstrip("/")
                memo[cid] = base
    return memo


class Tree(NamedTuple):
    """What a listing takes from the items: files and their owners by path, and the folders
    that hold nothing (no file, folder or package below them; never the root)."""

    entries: dict[str, SourceEntry]
    owners: dict[str, str | None]
    empty_folders: set[str]


def build(items: dict[str, dict]) -> Tree:
    """The tree by path. Drops orphans from `items` (their subtree was deleted)."""
    paths = _paths(items)
    tree = Tree({}, {}, set())
    parents: set[str | None] = set()
    for item_id, path in paths.items():
        v = items[item_id]
        if path is None:
            del items[item_id]
            continue
        parents.add(v.get("p"))
        if "s" in v:
            tree.entries[path] = SourceEntry(path, v["s"], v["m"], item_id, v["t"])
            tree.owners[path] = v["o"]
    tree.empty_folders.update(path for item_id, path in paths.items()
                              if path and item_id not in parents and "f" in items[item_id])
    return tree
