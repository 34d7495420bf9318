"""The listing side of `SmbSource`: one QUERY_DIRECTORY stream per folder, depth first.

What a name the server shows can become (see docs/RELIABILITY.md for the whole table):
- a name SMB cannot address again (MS-FSCC 2.1.5.2: `"*:<>?\\|` or a control character; only
  a server that does not mangle such Unix names shows them) is an `invalid_name` failure: `:`
  would open a stream, `\\` a subfolder, `*?` match other files;
- a name that is not valid UTF-16 (a lone surrogate, from a Windows server) is an `encoding`
  failure naming the folder and the escaped name;
- symlinks and junctions the server marks as such, and folders met twice (a link the server
  followed back into the tree), are `unsupported` failures: never followed;
- a DFS link (on a DFS namespace root) is followed: its folder is listed on the share it leads
  to (smbclient follows the referral) and its files keep the link's path. A link whose target
  cannot be reached is a `link_unreachable` failure at the link, and the walk goes on. Folders
  are told apart by share as well as id: two shares' ids may coincide.
A connection lost while a folder is read (dropped, or a session the server ended: a Kerberos
ticket's end) costs that folder a second reading on a new connection; lost again, the walk
breaks off (an incomplete listing, whose silence proves nothing: nothing is deleted for it).
Our own temporary files (an atomic write's, `smb_write`) are never listed; one older than
`TEMP_STALE_S` (its writer died) is removed once its folder has been listed.
A folder that holds nothing at all (no entry but "." and "..") is reported in its part's
`empty_folders` (two-way: empty folders travel); every part carries the set, so a walk
always reports folders.
Samba itself leaves out names it cannot convert to UTF-16 (not valid in its `unix charset`)
and links leading out of the share (`wide links = no`): no SMB client ever sees those.
"""
from __future__ import annotations

import builtins
import contextlib
import logging
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import smbclient
from smbclient._io import SMBDirectoryIO
from smbprotocol.exceptions import NoMoreFiles, NoSuchFile
from smbprotocol.file_info import FileAttributes, FileInformationClass
from smbprotocol.open import QueryDirectoryFlags, SMB2QueryDirectoryResponse

from shared import errors
from shared.sources.smb.ntstatus import connection_lost, filetime_ns
from shared.sources.smb.plumbing import SmbPlumbing, link_targets
from shared.sources.smb.writing import is_write_temp
from shared.sync.model import DeltaCursor, ListFailure, Listing, SourceEntry, gather

log = logging.getLogger(__name__)
DIR_BUFFER = 1024 * 1024  # QUERY_DIRECTORY reply size: ~10,000 names per round trip
_NAME_SURROGATE = 0x20000000  # reparse tag bit of symlinks, junctions, mount points
_DFS_LINK = 0x8000000A  # IO_REPARSE_TAG_DFS: a DFS namespace's link (MS-FSCC 2.1.2.1)
_REPARSE = FileAttributes.FILE_ATTRIBUTE_REPARSE_POINT
_DIRECTORY = FileAttributes.FILE_ATTRIBUTE_DIRECTORY
_UNADDRESSABLE = re.compile(r'[\x00-\x1f"*:<>?\\|]')
# FILE_ID_FULL_DIRECTORY_INFORMATION (MS-FSCC 2.4.18) up to the name, parsed with struct:
# smbprotocol's per-field Structure objects took ~3/4 of a walk's CPU (100,000 files: 22 s -> 5 s).
# next, index, (creation, access,) mtime, change time, eof, alloc, attrs, name length, ea, id
_ENTRY = struct.Struct("<II16xQQQQIII4xQ")
TEMP_STALE_S = 3600  # a write temp this old has no live writer: a write refreshes its mtime


class RawEntry(NamedTuple):
    file_id: int
    attrs: int
    ea_size: int
    size: int
    mtime_ns: int
    name: bytes
    change_ns: int = 0  # ChangeTime: moves with any change, even where the mtime does not


def parse_entries(buffer: bytes) -> Iterator[RawEntry]:
    offset = 0
    while True:
        nxt, _, mtime, change, eof, _, attrs, length, ea, file_id = \
            _ENTRY.unpack_from(buffer, offset)
        start = offset + _ENTRY.size
        yield RawEntry(file_id, attrs, ea, eof, filetime_ns(mtime), buffer[start:start + length],
                       filetime_ns(change))
        if not nxt:
            return
        offset += nxt


def shown(name: str) -> str:
    """A name as an admin can read it: control characters and lone surrogates escaped."""
    visible = "".join(f"\\x{ord(c):02x}" if c < " " or c == "\x7f" else c for c in name)
    return visible.encode("utf-8", "backslashreplace").decode("utf-8")


def decode_name(raw: bytes) -> tuple[str, bool]:
    """(name, valid). An invalid name keeps its lone surrogates (escaped by `shown`)."""
    try:
        return raw.decode("utf-16-le"), True
    except UnicodeDecodeError:
        return raw.decode("utf-16-le", "surrogatepass" if len(raw) % 2 == 0 else "replace"), False


class SmbLister(SmbPlumbing):
    """Mixed into SmbSource: uses its `_call`, `_kept`, `_fail`, `_unc` and `_kw`."""

    def list(self, cursor: DeltaCursor | None = None) -> Listing:
        return gather(self.walk(cursor))

    def walk(self, cursor: DeltaCursor | None = None) -> Iterator[Listing]:
        """One part per folder: a scan holds a folder's width, not the tree."""
        state = _Walk([""])
        while state.folders:
            part = self._folder_part(state, state.folders.pop())
            yield part
            if not part.complete:
                return  # the walk broke off: its silence proves nothing

    def _folder_part(self, state: _Walk, folder: str) -> Listing:
        """The folder's part, read again on a new connection (once) if the one it was read on
        was lost (a dropped connection; a session the server ended when its Kerberos ticket
        did): what the first reading added to the walk is taken back first."""
        for again in (False, True):
            mark = len(state.folders)
            part = Listing(empty_folders=set())
            leftovers: list[str] = []
            held = 0  # entries besides "." and "..": none, and the folder is empty
            used = self._kept()
            try:
                # The root and a second reading go through _call: it (re)connects and tells
                # auth failures apart.
                scan = self._call(folder, self._open_folder, folder) if not folder or again \
                    else self._open_folder(folder)
                used = self._kept()  # one made meanwhile by another thread is not ours
                with scan as d:
                    share = d.fd.tree_connect.share_name.lower()
                    for raw in self._entries(d):
                        held += self._add(part, state, share, folder, raw, leftovers)
            except Exception as exc:
                error = self._fail(exc, folder, used)
                lost = connection_lost(exc.__cause__ or exc)
                if folder in state.links:
                    error = errors.LinkUnreachable.at(folder, error,
                                                      link_targets(self._unc(folder)))
                elif lost and not again:
                    log.info("SMB connection lost while listing a folder; reading it again")
                    state.rewind(mark)
                    continue
                part.failures.append(ListFailure(folder, error.cause, str(error)))
                part.complete = bool(folder) and (folder in state.links or not lost)
                return part
            self._remove_leftovers(leftovers)
            if folder and not held and not part.failures:
                part.empty_folders = {folder}
            return part
        raise AssertionError("unreachable: the second reading returns")

    def _open_folder(self, folder: str) -> SMBDirectoryIO:
        d = SMBDirectoryIO(self._unc(folder), share_access="rwd", **self._kw())
        d.open()
        return d

    def _entries(self, d: SMBDirectoryIO) -> Iterator[RawEntry]:
        fd = d.fd
        size = min(DIR_BUFFER, fd.connection.max_transact_size)
        flags = QueryDirectoryFlags.SMB2_RESTART_SCANS
        while True:
            query, _ = fd.query_directory(
                "*", FileInformationClass.FILE_ID_FULL_DIRECTORY_INFORMATION, flags=flags,
                max_output=size, send=False)
            request = fd.connection.send(query, fd.tree_connect.session.session_id,
                                         fd.tree_connect.tree_connect_id)
            try:
                reply = fd.connection.receive(request)
            except (NoMoreFiles, NoSuchFile):
                return
            flags = 0
            response = SMB2QueryDirectoryResponse()
            response.unpack(reply["data"].get_value())
            yield from parse_entries(response["buffer"].get_value())

    def _remove_leftovers(self, paths: builtins.list[str]) -> None:
        """Stale temp files of writers that died: best effort (a read-only account cannot)."""
        for path in paths:
            with contextlib.suppress(Exception):
                smbclient.remove(self._unc(path), **self._kw())

    def _add(self, listing: Listing, state: _Walk, share: str, folder: str, raw: RawEntry,
             leftovers: builtins.list[str]) -> bool:
        """Add what the entry (listed on `share`) is to the listing; False for "." and ".."
        (nothing held)."""
        file_id = raw.file_id
        name, valid = decode_name(raw.name)
        seen = state.seen
        if name in (".", ".."):
            if name == "." and file_id:
                seen.setdefault((share, file_id), folder)
            return False
        path = f"{folder}/{name}" if folder else name
        if is_write_temp(name):
            if raw.mtime_ns < (time.time() - TEMP_STALE_S) * 1e9:
                leftovers.append(path)
            return True
        problem = _name_problem(folder, name, valid)
        if problem is not None:
            listing.failures.append(problem)
            return True
        attrs = raw.attrs
        # For reparse points the EA size field holds the reparse tag (MS-FSCC 2.4.17).
        if attrs & _REPARSE and raw.ea_size & _NAME_SURROGATE:
            listing.failures.append(ListFailure(path, "unsupported",
                                                "symlink or junction not followed"))
        elif attrs & _DIRECTORY:
            if file_id and (share, file_id) in seen:  # a link followed back into the tree
                listing.failures.append(ListFailure(path, "unsupported",
                                                    "symlink or junction not followed"))
                return True
            seen[(share, file_id)] = path
            if attrs & _REPARSE and raw.ea_size == _DFS_LINK:
                state.links.add(path)
            state.folders.append(path)
        else:
            listing.entries[path] = SourceEntry(path, raw.size, raw.mtime_ns, str(file_id),
                                                change_ns=raw.change_ns)
        return True


@dataclass
class _Walk:
    """A walk's state: folders still to list (depth first keeps them to about width x depth),
    the (share, id) of folders met with the path met at (Samba follows symlinks: loops are
    possible) and the folders that are DFS links."""
    folders: builtins.list[str]
    seen: dict[tuple[str, int], str] = field(default_factory=dict)
    links: set[str] = field(default_factory=set)

    def rewind(self, mark: int) -> None:
        """Forget the folders met since `folders` was `mark` long (a reading given up)."""
        dropped = set(self.folders[mark:])
        del self.folders[mark:]
        self.links -= dropped
        self.seen = {key: path for key, path in self.seen.items() if path not in dropped}


def _name_problem(folder: str, name: str, valid: bool) -> ListFailure | None:
    """Why a listed name cannot be synced, or None. Folders too: their subtree is skipped."""
    where = f"in folder {folder!r}" if folder else "at the top of the share"
    if not valid:
        # No honest path exists: the failure's path is the folder and the escaped name.
        escaped = f"{folder}/{shown(name)}" if folder else shown(name)
        return ListFailure(escaped, errors.EncodingIssue.cause,
                           f"name '{shown(name)}' {where} is not valid UTF-16: not synced")
    if _UNADDRESSABLE.search(name):
        return ListFailure(f"{folder}/{name}" if folder else name, errors.InvalidName.cause,
                           f"name '{shown(name)}' {where} holds a character SMB cannot open "
                           'a file by (" * : < > ? \\ | or a control character): not synced')
    return None
