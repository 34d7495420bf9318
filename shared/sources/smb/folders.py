"""Folders on an SMB share (two-way: empty folders travel): `make_folder` creates one (and its
parents), `remove_folder_if_empty` removes one only while it holds nothing, and then its parents
while they are empty (`SmbPlumbing._remove_emptied`, the helper a delete and a move use too),
`respell_folder` gives one a new spelling (a folder renamed by case only in ScaiDrive).

"Empty" is the server's answer at that moment, not a listing's: an SMB rmdir refuses a folder
holding anything (DIRECTORY_NOT_EMPTY), hidden files and files no scan saw included. The base
folder (the connector's root, "") is never removed, nor respelled; nor is a DFS link (that
would remove or rename the folder it leads to; `SmbPlumbing._is_link`).

A respelling is one rename of the folder itself, whatever it holds: the directory is opened
(DELETE access, the directory create option, sharing everything) and asked, in the same round
trip, for its name as the server spells it (FileAllInformation: the path from the share's root,
parents as on disk, since the server resolves the name whatever its case); then one SMB2
SET_INFO FileRenameInformation on that handle renames it to that parent + the new last
component (ReplaceIfExists false). Already spelled so: nothing is sent. Files inside keep their
ids. While a file below is open (a reader of ours, a user's program) the server refuses the
rename with ACCESS_DENIED (Samba, verified here): the open granted DELETE, so that is
FileInUse, tried again later.
"""
from __future__ import annotations

import contextlib

import smbclient
from smbclient._io import SMBDirectoryIO, SMBFileTransaction, query_info, set_info
from smbprotocol.exceptions import SMBOSError
from smbprotocol.file_info import FileAllInformation, FileRenameInformation
from smbprotocol.open import FilePipePrinterAccessMask

from shared import errors
from shared.sources.base import check_respelling
from shared.sources.smb.plumbing import SmbPlumbing

_NOT_EMPTY = 0xC0000101  # DIRECTORY_NOT_EMPTY
_ACCESS_DENIED = 0xC0000022
_RENAME_ACCESS = (FilePipePrinterAccessMask.DELETE | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
                  | FilePipePrinterAccessMask.SYNCHRONIZE)
_NAME_ROOM = 65_536  # FileAllInformation's answer, the name included: one credit's worth


class SmbFolders(SmbPlumbing):
    """Mixed into SmbSource: uses its `_call`, `_unc` and `_kw`."""

    def make_folder(self, path: str) -> None:
        """Create the folder (and its parents); one already there is fine."""
        self._call(path, smbclient.makedirs, self._unc(path), exist_ok=True, **self._kw())

    def remove_folder_if_empty(self, path: str) -> bool:
        """Remove the folder if it holds nothing now, then its parents while empty. False: it
        holds something, and stays. A folder already gone counts as removed."""
        if not path:
            return False  # the base: never
        try:
            if self._is_link(path) or not self._call(path, self._rmdir_if_empty, path):
                return False
        except errors.NotFound:
            pass
        self._remove_emptied(path.rpartition("/")[0])
        return True

    def _rmdir_if_empty(self, path: str) -> bool:
        try:
            smbclient.rmdir(self._unc(path), **self._kw())
        except SMBOSError as exc:
            if exc.ntstatus == _NOT_EMPTY:
                return False
            raise
        return True

    def respell_folder(self, old: str, new: str) -> None:
        """Rename the folder at `old` (parents found whatever their case) to the new spelling
        of its last component; already spelled so: nothing to do. NotFound: no such folder."""
        name = check_respelling(old, new)
        self._unc(new)  # a path that escapes the base is refused before anything is done
        if self._is_link(old):
            raise errors.SyncError("the folder is a DFS link: its name is the namespace's, "
                                   "set by its admin; not renamed at the file server", old)
        self._call(old, self._respell, old, name)

    def _respell(self, old: str, name: str) -> None:
        raw = SMBDirectoryIO(self._unc(old), mode="r", share_access="rwd",
                             desired_access=_RENAME_ACCESS, **self._kw())
        tx = SMBFileTransaction(raw)
        raw.open(transaction=tx)
        query_info(tx, FileAllInformation, output_buffer_length=_NAME_ROOM)
        try:
            tx.commit()  # a file at `old` (NOT_A_DIRECTORY) or nothing there: NotFound
            spelled = tx.results[1]["name_information"]["file_name"].get_value()
            parent, _, current = spelled.strip("\\").rpartition("\\")
            if current == name:
                return  # already spelled so (a redelivered job)
            rename = FileRenameInformation()
            rename["replace_if_exists"] = False
            rename["file_name"] = "\\".join(filter(None, [parent, name]))
            tx = SMBFileTransaction(raw)
            set_info(tx, rename)
            try:
                tx.commit()
            except SMBOSError as exc:
                if exc.ntstatus == _ACCESS_DENIED:  # DELETE was granted at the open: in use
                    raise errors.FileInUse("a file in the folder is open at the file server",
                                           old) from exc
                raise
        finally:
            with contextlib.suppress(Exception):
                raw.close()
