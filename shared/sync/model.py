"""One model of a file's version, from listing to index: what a walk found (`SourceEntry`, in a
`Listing` with its failures and delta position), what the index keeps once the bucket holds it
(`IndexRecord`: the same version, its owner labels and the object's etag), what both share
(`Versioned`) and how two versions compare (`same_content`: the one rule, used by the scans,
the transfer worker, the conditional writes and the tests alike; `racily_clean`: when an
unchanged version does not prove unchanged bytes), and the conditions a
conditional write is made on (`ABSENT`, `check_expected`).

The wire's `contracts.FileVersion` is converted here and nowhere else: `wire_version` (any
version onto the wire), `listed_at` (a version back to an entry at a path), `synced_record`
(a version the bucket now holds, as its index record).

Both dataclasses are slotted and frozen: a scan holds one per file of the tree.
Pure: the standard library, `shared.errors` and `shared.contracts` only.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from shared import errors
from shared.contracts import FileVersion, OwnerMethod


class Versioned(Protocol):
    """A file's version wherever it is held: a `SourceEntry`, an `IndexRecord`, a wire
    `FileVersion`."""

    @property
    def size(self) -> int: ...

    @property
    def mtime_ns(self) -> int: ...

    @property
    def file_id(self) -> str | None: ...

    @property
    def content_tag(self) -> str | None: ...

    @property
    def change_ns(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """A file's version as the source lists it."""

    path: str
    size: int
    mtime_ns: int
    file_id: str | None = None  # stable across renames where the backend has one
    # A content hash where the backend keeps one (SharePoint's quickXorHash): when both sides
    # have it, it (with the size) decides "unchanged", not the mtime a rename may bump.
    content_tag: str | None = None
    # When the file last changed in any way (SMB's ChangeTime, ns): an edit moves it even
    # where the mtime stays (same tick, or set back by the editor). None: not known.
    change_ns: int | None = None


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """A path's entry in the index: the source version the bucket holds, who owns the object
    and under which mapping, and the object's etag. Stored packed, its owner labels interned per
    connector (shared/store/index_codec.py)."""

    size: int
    mtime_ns: int
    file_id: str | None
    owner: str
    principal: str | None
    etag: str | None
    synced_at: float
    method: OwnerMethod = "system_owner"  # how `owner` was decided (`Owner.method`)
    score: float | None = None  # the fuzzy-name score when method is "name"
    identity_version: int = 1  # the connector's mapping version that labelled the object
    content_tag: str | None = None  # the source's content hash of the stored version
    change_ns: int | None = None  # the source's change time of the stored version (SMB)


def same_content(entry: Versioned, known: Versioned) -> bool:
    """Unchanged? A content hash on both sides decides (a SharePoint rename bumps the mtime but
    not the bytes); otherwise size and mtime, with file ids and change times that must agree
    where both sides have them. A version without a change time (indexed before it was kept,
    or the wire's `FileVersion`) agrees with any: no file is sent again for lack of one."""
    ids_agree = entry.file_id is None or known.file_id is None or entry.file_id == known.file_id
    if entry.content_tag and known.content_tag:
        return entry.size == known.size and entry.content_tag == known.content_tag and ids_agree
    a, b = entry.change_ns, known.change_ns
    return entry.size == known.size and entry.mtime_ns == known.mtime_ns and ids_agree and \
        (a is None or b is None or a == b)


# A version read this soon after its file's last write may hide another write of the same size
# in the same timestamp tick (FAT keeps mtimes to 2 s; git calls such entries "racily clean"),
# which no version can show where the server has no real change time (Samba answers ChangeTime
# = mtime). The window is the coarsest tick and a second of clock skew between file server and
# workers (NTP-synced, as Kerberos already needs them).
RACY_WINDOW_NS = 3_000_000_000


def racily_clean(known: IndexRecord) -> bool:
    """Was the indexed version read within `RACY_WINDOW_NS` of its mtime (`synced_at` is when
    its read began), so that an unchanged version does not prove unchanged bytes? Then the next
    run compares the bytes (`ChangeKind.RECHECKED`). A content hash decides by itself, and an
    empty file cannot hide an edit. An mtime in the future (a file server's clock ahead) stays
    racy until the workers' clock passes it."""
    return known.content_tag is None and known.size > 0 and \
        known.mtime_ns >= known.synced_at * 1e9 - RACY_WINDOW_NS


# Which principals may be a person (shared.config.active_directory.may_be_a_person: not a
# built-in one, whose files stay the system owner's whatever users are imported).
PrincipalCheck = Callable[[str], bool]


def labels_outdated(known: IndexRecord, identity_version: int,
                    users_imported: PrincipalCheck | None) -> bool:
    """Must the object's owner labels be decided again (a relabel: new metadata, same bytes)?
    When they were decided under another mapping version than the connector's; and, when
    ScaiDrive's users were imported since the connector's files were last labelled
    (`users_imported`, which then tells the principals that may be a person), when they name
    the system owner for such a principal (no user matched it then; a group the directory
    names is decided again too: it stays the system owner, its object untouched)."""
    return known.identity_version != identity_version or (
        users_imported is not None and known.method == "system_owner"
        and known.principal is not None and users_imported(known.principal))


# --- conversions: the only ones -------------------------------------------------------------

def wire_version(v: Versioned) -> FileVersion:
    """A version as messages carry it."""
    return FileVersion(size=v.size, mtime_ns=v.mtime_ns, file_id=v.file_id,
                       content_tag=v.content_tag, change_ns=v.change_ns)


def listed_at(path: str, v: Versioned) -> SourceEntry:
    """A version (a message's, a record's) as the source would list it at `path`."""
    return SourceEntry(path, v.size, v.mtime_ns, v.file_id, v.content_tag, v.change_ns)


def synced_record(v: Versioned, *, etag: str | None, synced_at: float, owner: str,
                  principal: str | None = None, method: OwnerMethod = "system_owner",
                  score: float | None = None, identity_version: int = 1,
                  fallback_file_id: str | None = None) -> IndexRecord:
    """The index record of a version the bucket now holds, with its owner labels.
    `fallback_file_id`: the file id to keep when `v` has none (a read that does not say)."""
    return IndexRecord(size=v.size, mtime_ns=v.mtime_ns, file_id=v.file_id or fallback_file_id,
                       owner=owner, principal=principal, etag=etag, synced_at=synced_at,
                       method=method, score=score, identity_version=identity_version,
                       content_tag=v.content_tag, change_ns=v.change_ns)


# --- conditional writes -----------------------------------------------------------------------

class Absent:
    """Type of `ABSENT`: a conditional write's "the path must not exist" (new in ScaiDrive)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent()
ANY = None  # unconditional: write/delete whatever is there


def check_expected(path: str, current: Versioned | None,
                   expect: Versioned | Absent | None) -> None:
    """Raise ChangedAtSource unless the source's `current` version (None: no file) is `expect`."""
    if expect is None:
        return
    if isinstance(expect, Absent):
        if current is not None:
            raise errors.ChangedAtSource("a file was created at the source meanwhile", path)
    elif current is None:
        raise errors.ChangedAtSource("the file was deleted at the source meanwhile", path)
    elif not same_content(current, expect):
        raise errors.ChangedAtSource("the file was changed at the source meanwhile", path)


# --- listings ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ListFailure:
    """A folder or file that could not be listed; its subtree is unknown this run."""

    path: str
    cause: str
    message: str


# How much earlier than its period a connector's full listing may come (its own share of it,
# from its id): a fifth of a week spreads connectors whose clocks started together over 1.4 days.
FULL_LISTING_SPREAD = 0.2

# A backend's item as saved with its delta position: compact JSON, shaped by the backend.
# A file's holds its size "s", mtime "m" (ns), content tag "t" and owner "o"; TOMBSTONE stands
# for an indexed file the listing no longer has.
DeltaItem = dict[str, Any]
TOMBSTONE: DeltaItem = {"x": 1}


class IndexedFile(NamedTuple):
    """A file as the connector's index holds it, by what its delta item holds too: enough to
    rebuild the item of a file unchanged since it was synced, which a saved position therefore
    leaves out (a library's files cost Redis once, in the index, not twice)."""

    path: str
    size: int
    mtime_ns: int
    content_tag: str | None
    owner: str | None


def paths_of(items: Mapping[str, DeltaItem]) -> dict[str, str | None]:
    """Path of every item ('' for the root {"r": 1}; an item's name "n", its parent's id "p");
    None where the parent chain is broken (an ancestor was deleted) or loops."""
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


def folder_ids(items: Mapping[str, DeltaItem]) -> dict[str, str]:
    """Path -> id of the root, folders and packages among `items` (not their files)."""
    holders = {i: v for i, v in items.items() if "s" not in v and "x" not in v}
    return {path: i for i, path in paths_of(holders).items() if path is not None}


def file_item(path: str, rec: IndexRecord, folders: Mapping[str, str]) -> DeltaItem | None:
    """The item of the file an index record vouches for, under its folder (`folders`: ids by
    path); None where the folder is not known, or `path` is a folder's own record."""
    parent, _, name = path.rpartition("/")
    if rec.file_id is None or not name or (parent_id := folders.get(parent)) is None:
        return None
    return {"n": name, "p": parent_id, "s": rec.size, "m": rec.mtime_ns, "t": rec.content_tag,
            "o": rec.principal}


# Pages of the connector's index, file records by item id (a thread reads them one by one).
IndexPages = Callable[[], Iterable[Mapping[str, IndexedFile]]]


class EnumerationProgress(Protocol):
    """Where a delta-capable source's full enumeration stands, kept page by page as it goes,
    so that a scan killed midway goes on from its last page instead of the library's first
    (the store keeps it until the run's position is saved). `of`: what is enumerated (a
    drive's id); progress kept of another is not given back. Awaited on the listing's loop."""

    async def resume(self, of: str) -> tuple[str, dict[str, DeltaItem]] | None:
        """The link to follow on and the items the pages so far gave; None: start over."""
        ...

    async def keep(self, of: str, link: str, put: Mapping[str, DeltaItem],
                   removed: Iterable[str], first: bool = False) -> None:
        """One more page in: the link that follows it, its items, the ids it deleted.
        `first`: the enumeration's first page (what was kept before goes)."""
        ...


@dataclass
class DeltaCursor:
    """Where an incremental (delta) listing resumes: the backend's saved position and the items
    it knew then, by backend id (enough to rebuild every path from parent ids). The scanner keeps
    it per connector and saves the listing's new cursor only once the run's jobs are published.

    Saved, `items` holds the folders and only the files the index does not vouch for; the
    backend rebuilds the others from `index_pages` as it lists (its new cursor's `items` are
    already what is saved, but for the run's changes: `stored`)."""

    link: str | None = None  # None: enumerate everything
    items: dict[str, DeltaItem] = field(default_factory=dict)
    # When `items` were last enumerated in full (seconds since 1970), not only patched with
    # changes; None: not known.
    full_at: float | None = None
    # Never saved. Read with the position: the index's files by item id, a page at a time.
    index_pages: IndexPages | None = field(default=None, compare=False, repr=False)
    # Never saved. Where a full enumeration stands, kept as it goes (`EnumerationProgress`).
    enumeration: EnumerationProgress | None = field(default=None, compare=False, repr=False)
    # Never saved. Set by the listing: the files it had from the backend that the index vouches
    # for (left out of `items`), and its folders' ids by path.
    vouched: dict[str, DeltaItem] = field(default_factory=dict, compare=False, repr=False)
    folders: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def pages(self) -> Iterable[Mapping[str, IndexedFile]]:
        return self.index_pages() if self.index_pages is not None else ()

    def stored(self, acted: Mapping[str, IndexRecord]) -> dict[str, DeltaItem]:
        """What a saved position holds of a listing's items: `items`, and each file the run
        acted on (`acted`: the records of its changes' paths) whatever the index says: its job
        may drop the record while the file stays (a filter now excludes it), and it would be
        lost from the next listings. Put back as the listing had it: the index's record, which
        vouched for it."""
        out = dict(self.items)
        for path, rec in acted.items():
            if rec.file_id is None or rec.file_id in out:
                continue
            if (listed := self.vouched.get(rec.file_id)) is not None:
                out[rec.file_id] = listed
            elif (rebuilt := file_item(path, rec, self.folders)) is not None:
                out[rec.file_id] = rebuilt
        return out

    def full_listing_due(self, every_s: float, now: float, connector_id: str) -> bool:
        """Enumerate everything again instead of the changes since `link`: a change feed can
        miss a change (a deletion it never reports stays in ScaiDrive for good), so its items
        are checked against the whole library every `every_s` (0: never), less up to a fifth
        of it, the same for a connector each time: connectors whose clocks started together
        (created together, or upgraded together) are not listed whole all at once, throttled
        together by their tenant."""
        if not self.link or every_s <= 0 or self.full_at is None:
            return False
        share = zlib.crc32(connector_id.encode()) / 2**32  # in [0, 1), fixed per connector
        return now - self.full_at >= every_s * (1 - FULL_LISTING_SPREAD * share)


@dataclass
class Listing:
    entries: dict[str, SourceEntry] = field(default_factory=dict)
    failures: list[ListFailure] = field(default_factory=list)
    # False when the walk was cut short (connection lost): nothing may be deleted on its strength.
    complete: bool = True
    cursor: DeltaCursor | None = None  # set by delta-capable backends: the position to save
    resynced: bool = False  # the saved position had expired: this is a full enumeration
    # Two-way folders: the folders that hold nothing at all (no file, no subfolder), as paths
    # like the files'; None where the backend does not report folders (they do not travel).
    empty_folders: set[str] | None = None


def gather(parts: Iterable[Listing]) -> Listing:
    """One Listing from a walk's parts (what `Source.list` returns)."""
    whole = Listing()
    for part in parts:
        whole.entries.update(part.entries)
        merge_flags(whole, part)
    return whole


def merge_flags(whole: Listing, part: Listing) -> None:
    """Everything of a part but its entries: failures, completeness, the delta position."""
    whole.failures.extend(part.failures)
    whole.complete = whole.complete and part.complete
    whole.cursor = part.cursor if part.cursor is not None else whole.cursor
    whole.resynced = whole.resynced or part.resynced
    if part.empty_folders is not None:
        whole.empty_folders = (whole.empty_folders or set()) | part.empty_folders
