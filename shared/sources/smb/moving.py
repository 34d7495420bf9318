"""Renaming a file on an SMB share (`SmbSource.move`): a file renamed in ScaiDrive is renamed at
the file server, its bytes never sent again, its file id kept (an SMB rename keeps the file).

Conditional like the writes (shared/sources/smb/writing.py): the file is opened (with DELETE
access, sharing everything, so nobody is locked out) and its version checked on that very
handle, then renamed through it in one SMB2 SET_INFO (MS-FSCC FileRenameInformation) with
ReplaceIfExists false: a file (or folder) at the new path is never overwritten, the server
refuses with OBJECT_NAME_COLLISION; a case-only rename (`Report.txt` -> `report.txt`, on a
server that ignores case) renames the file to its new spelling. Parent folders of the new path
are created first. Once the file is out, its old folder is removed if that left it empty (and
its parents, while empty; `SmbPlumbing._remove_emptied`): a folder renamed in ScaiDrive leaves
no empty shell behind.

A rename cannot leave the share its handle is on. Where the old and the new path lie on
different shares (a DFS link leads one of them elsewhere), the file is copied to the new path
(a write that must find nothing there, taking the original's owner and ACL where the account
may set them) and the old one deleted if it is still the version expected: the content and its
owner move, the file id does not.
"""
from __future__ import annotations

import contextlib

import smbclient
from smbclient._io import SMBFileIO, SMBFileTransaction, query_info, set_info
from smbprotocol.exceptions import SMBOSError
from smbprotocol.file_info import FileInternalInformation, FileRenameInformation
from smbprotocol.open import FilePipePrinterAccessMask

from shared import errors
from shared.sources.smb.ntstatus import mtime_ns
from shared.sources.smb.plumbing import SmbPlumbing, resolved, same_share, share_relative
from shared.sync.model import ABSENT, SourceEntry, check_expected

_NAME_COLLISION = 0xC0000035  # OBJECT_NAME_COLLISION: something holds the new name
_MOVE_ACCESS = (FilePipePrinterAccessMask.DELETE | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
                | FilePipePrinterAccessMask.SYNCHRONIZE)


class _AcrossShares(errors.SyncError):
    """The new path is on another share than the old one's handle: no rename can get there."""


class SmbMover(SmbPlumbing):
    """Mixed into SmbSource: uses its `_call`, `_unc`, `_kw`, `stat`, `open_read`, `_write` and
    `delete`."""

    def move(self, old: str, new: str, expect: SourceEntry) -> SourceEntry:
        """Rename `old` to `new` if `old` is still `expect` and nothing is at `new`."""
        self._unc(new)  # a path that escapes the base is refused before anything is done
        holder = self._file_id_at(new)
        # A case-only rename finds the file itself at `new` on a server that ignores case.
        if holder is not None and (holder != expect.file_id or
                                   old.casefold() != new.casefold()):
            raise errors.ChangedAtSource("a file was created at the source meanwhile", new)
        try:
            self._call(old, self._rename, old, new, expect, retry=False)
        except _AcrossShares:
            return self._copy_across(old, new, expect)
        self._remove_emptied(old.rpartition("/")[0])
        return self.stat(new)

    def _copy_across(self, old: str, new: str, expect: SourceEntry) -> SourceEntry:
        """Copy `old` to `new` (which must be free), with its owner and ACL, then delete `old`
        if it is still `expect` (it and the folders it empties): a move between two shares."""
        with self.open_read(old, expect.size) as reader:
            check_expected(old, reader.entry, expect)
            self._write(new, reader, reader.entry.size, ABSENT, old)
        self.delete(old, expect)
        return self.stat(new)

    def _file_id_at(self, path: str) -> str | None:
        """The file id of what is at `path` (as the server resolves the name), None if nothing
        is."""
        try:
            st = self._call(path, smbclient.stat, self._unc(path), **self._kw())
        except errors.NotFound:
            return None
        return str(st.st_ino)

    def _rename(self, old: str, new: str, expect: SourceEntry) -> None:
        parent = new.rpartition("/")[0]
        if parent:
            smbclient.makedirs(self._unc(parent), exist_ok=True, **self._kw())
        raw = SMBFileIO(self._unc(old), mode="r", share_access="rwd",
                        desired_access=_MOVE_ACCESS, **self._kw())
        tx = SMBFileTransaction(raw)
        raw.open(transaction=tx)
        query_info(tx, FileInternalInformation)
        tx.commit()
        try:
            fd = raw.fd
            current = SourceEntry(old, fd.end_of_file, mtime_ns(fd.last_write_time),
                                  str(tx.results[1]["index_number"].get_value()),
                                  change_ns=mtime_ns(fd.change_time))
            check_expected(old, current, expect)  # on the handle that is renamed next
            tree, name = resolved(self._unc(new), self._kw())  # its folder is made: a DFS
            if not same_share(tree, fd.tree_connect):  # link on the way is known by now
                raise _AcrossShares(new)
            self._rename_handle(raw, new, share_relative(tree, name))
        finally:
            with contextlib.suppress(Exception):
                raw.close()

    def _rename_handle(self, raw: SMBFileIO, new: str, name: str) -> None:
        """`raw`'s file becomes `name` (share-relative: `new` on the handle's share)."""
        rename = FileRenameInformation()
        rename["replace_if_exists"] = False
        rename["file_name"] = name
        tx = SMBFileTransaction(raw)
        set_info(tx, rename)
        try:
            tx.commit()
        except SMBOSError as exc:
            if exc.ntstatus == _NAME_COLLISION:
                raise errors.ChangedAtSource("a file was created at the source meanwhile",
                                             new) from exc
            raise
