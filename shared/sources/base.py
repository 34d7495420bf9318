"""The one interface every source backend implements (rclone's `Fs`, for us).

Paths are relative, '/'-separated, never starting with '/'. Calls are blocking: services run
them in threads. Failures raise the classes of `shared.errors`. The data the calls take and
return (`SourceEntry`, `Listing`, ...) is the pure core's model: `shared.sync.model`.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from shared.sync.model import ANY, Absent, DeltaCursor, Listing, SourceEntry, Versioned


class ByteStream(Protocol):
    """What a write reads its bytes from, a part at a time until `size` (a file, an object's
    response, a reader paced by the connector's bandwidth limit)."""

    def read(self, size: int = -1, /) -> bytes: ...


class Reader(Protocol):
    """An open file: `entry` is the version being read (size/mtime as opened)."""

    entry: SourceEntry

    def read(self, size: int = -1) -> bytes: ...

    def start_at(self, offset: int) -> None:
        """Before the first read: hand out the bytes from `offset` on, not those before it
        (an upload going on with the parts a killed worker sent). SMB asks the server from
        there; SharePoint reads through them, its content hash covering the whole file."""


class Source(Protocol):
    def walk(self, cursor: DeltaCursor | None = None) -> Iterator[Listing]:
        """The tree in parts (a folder at a time where the backend lists folders; a delta
        backend's changes, then a page of the index at a time), so that a scan holds one
        folder's width, not the tree. Each part carries its own entries and failures; a path
        may come twice (the scan keeps it once). `complete`, `cursor` and `resynced` hold for
        the walk as a whole once merged (`merge_flags`). Run in a thread: a delta backend
        reads `cursor.index_pages`, which waits on the scan's event loop."""

    def list(self, cursor: DeltaCursor | None = None) -> Listing:
        """The whole tree. Per-folder errors go in `failures`; the walk goes on. A delta-capable
        backend asks only for changes since `cursor` and returns the full listing rebuilt from
        it plus `listing.cursor`; others ignore `cursor`."""

    def stat(self, path: str) -> SourceEntry: ...

    def open_read(self, path: str, size_hint: int | None = None, *,
                  expect: Versioned | None = None) -> AbstractContextManager[Reader]:
        """Open for reading without locking other users of the file out. `size_hint` (the
        listed size) lets a backend fetch a small file in one round trip; `expect` (the listed
        version) lets it use what a listing moments ago gave for that version (SharePoint's
        folder listings). `reader.entry` is always the version whose bytes are read."""

    def write(self, path: str, data: ByteStream, size: int,
              expect: SourceEntry | Absent | None = ANY) -> SourceEntry:
        """Create or replace a file (creating parent folders); returns the new version as the
        source now holds it (SharePoint rewrites Office files: not always the bytes sent).
        `expect`: the version the file must still be (`same_content`), or ABSENT (no file
        there); otherwise ChangedAtSource and the file is left untouched."""

    def move(self, old: str, new: str, expect: SourceEntry) -> SourceEntry:
        """Rename the file at `old` to `new` (creating parent folders), no bytes sent; returns
        its version at `new`, the same file (SMB's file id, SharePoint's item id kept).
        Conditional like `write`: only while `old` is still `expect` (`same_content`) and
        nothing is at `new` (never overwritten); otherwise ChangedAtSource, nothing moved.
        NotFound when `old` is gone. The folder the move left empty goes, as after `delete`."""

    def delete(self, path: str, expect: SourceEntry | None = ANY) -> None:
        """Delete a file. With `expect`, only that version (else ChangedAtSource, file kept);
        NotFound when it is already gone. Then the folder this left empty is removed (and its
        parents while empty, never the base; "empty" as the server says at that moment: SMB's
        rmdir, SharePoint's childCount and a DELETE with If-Match on the folder's eTag)."""

    def make_folder(self, path: str) -> None:
        """Create a folder (and its parents); one already there is fine. Two-way: an empty
        folder made in ScaiDrive. Only called where the listing reports folders
        (`Listing.empty_folders`: SMB and SharePoint do)."""

    def remove_folder_if_empty(self, path: str) -> bool:
        """Remove the folder only if it holds nothing at that moment (as the server says, not
        a listing), then its parents while empty; never the base. False: it holds something
        and stays. Gone already: True. SharePoint: childCount 0, then a DELETE If-Match the
        folder's eTag (a child saved in between changes it: 412, False)."""

    def respell_folder(self, old: str, new: str) -> None:
        """Give the folder at `old` the spelling `new`: the same path but for the case of its
        last component (a folder renamed by case only in ScaiDrive; both backends ignore case,
        so `old`'s parents are found whatever `new` spells them). Already spelled `new`: nothing
        to do (a redelivered job). NotFound (shared.errors) if no such folder. Never the
        connector's own root folder (path ""). ValueError (`check_respelling`) when `new` is not
        `old` respelled."""

    def owners(self, paths: Iterable[str]) -> dict[str, str | None]:
        """The owner principal (SID for SMB) of each path; None where unknown."""

    def close(self) -> None: ...


def check_respelling(old: str, new: str) -> str:
    """The new spelling of the last component, after checking that `new` is `old` respelled
    (`Source.respell_folder`): the same path but for case, character by character (so its
    parents are the same folders, and "ß" -> "SS", equal folded, is refused too), and not the
    base (""). ValueError otherwise: a caller's mistake, never a server's answer."""
    if not old or not new:
        raise ValueError(f"the connector's root folder is never respelled: {old!r} -> {new!r}")
    if len(old) != len(new) or any(a.casefold() != b.casefold()
                                   for a, b in zip(old, new, strict=True)):
        raise ValueError(f"not a change of case only: {old!r} -> {new!r}")
    return new.rpartition("/")[2]
