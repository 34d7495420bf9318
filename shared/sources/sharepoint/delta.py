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

A saved position holds the folders and only the files the index does not vouch for, and a
tombstone {"x": 1} for an indexed file no longer there; the listing (delta_listing.py) rebuilds
the rest from the index, a page at a time, after the changes since are applied here.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from shared.sync.model import SourceEntry

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
    """The item kept of a driveItem's JSON. Its parent id and owner are interned: a library's
    files share a few of each (one string per folder and per person, not per file)."""
    if "root" in item:
        return {"r": 1}
    parent = _interned((item.get("parentReference") or {}).get("id"))
    if "folder" in item:
        return {"n": item.get("name"), "p": parent, "f": 1}
    if not is_file(item):
        return {"n": item.get("name"), "p": parent, "k": 1}
    return {"n": item.get("name"), "p": parent, "s": item.get("size") or 0,
            "m": mtime_ns(item.get("lastModifiedDateTime")), "t": content_tag(item),
            "o": _interned(owner_email(item))}


def _interned(text: str | None) -> str | None:
    return sys.intern(text) if isinstance(text, str) else text


def apply(items: dict[str, dict], page: Iterable[dict], gone: set[str] | None = None) -> None:
    """One delta page onto `items`, in order: an item sent twice ends as its last version.
    `gone`: gets the ids of the items deleted (and loses those sent again)."""
    for item in page:
        if "deleted" in item:
            items.pop(item["id"], None)
            if gone is not None:
                gone.add(item["id"])
        else:
            items[item["id"]] = compact(item)
            if gone is not None:
                gone.discard(item["id"])


def has_root(items: dict[str, dict]) -> bool:
    return any(v.get("r") for v in items.values())


def is_legacy(items: dict[str, dict]) -> bool:
    """Saved before folders were told from packages: such a position cannot list folders."""
    return any("d" in v for v in items.values())
