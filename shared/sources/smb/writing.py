"""The write side of `SmbSource`: create/replace and delete, unconditional or conditional on the
version the caller based its change on (two-way sync: a concurrent edit becomes a conflict).

A write never touches the file in place. The content goes to a hidden temporary file beside it
(`.~scaidrive-<random>.tmp`, left out of every listing), which takes the original's security
descriptor (owner and ACL where the account may set them, else the ACL alone) and then replaces
the original in one SMB2 rename on the same handle. A writer killed at any point leaves the
original whole and at most a temporary file, which a later walk removes once it is stale.

SMB has no compare-and-swap on content, so a conditional replace or delete stats, compares and
then acts: the version is checked before the upload (no wasted transfer) and again right before
the rename, so an edit landing during a long upload is caught; one landing in the last round
trip is not. "Must not exist" is exact: the rename without replace fails when a file appeared.
A file that someone holds open cannot be replaced (Windows semantics, Samba's too): that write
fails as `FileInUse`, a transient failure retried later, and the original stays as it is.
"""
from __future__ import annotations

import contextlib
import logging
import secrets

import smbclient
from smbclient._io import SMBFileIO, SMBFileTransaction, set_info
from smbprotocol.exceptions import SMBOSError
from smbprotocol.file_info import FileAttributes, FileRenameInformation
from smbprotocol.open import (
    FilePipePrinterAccessMask,
    SMB2QueryInfoRequest,
    SMB2QueryInfoResponse,
    SMB2SetInfoRequest,
    SMB2SetInfoResponse,
)

from shared import errors
from shared.sources.base import ByteStream
from shared.sources.smb.plumbing import SmbPlumbing, share_relative
from shared.sync.model import Absent, SourceEntry, check_expected

log = logging.getLogger(__name__)

TEMP_PREFIX, TEMP_SUFFIX = ".~scaidrive-", ".tmp"
_NAME_COLLISION = 0xC0000035  # OBJECT_NAME_COLLISION: the rename found a file there
_ACCESS_DENIED = 0xC0000022
_SECURITY = 3  # SMB2_0_INFO_SECURITY
_OWNER, _GROUP, _DACL = 0x1, 0x2, 0x4
_TEMP_ACCESS = (FilePipePrinterAccessMask.FILE_WRITE_DATA
                | FilePipePrinterAccessMask.FILE_WRITE_ATTRIBUTES
                | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
                | FilePipePrinterAccessMask.DELETE | FilePipePrinterAccessMask.READ_CONTROL
                | FilePipePrinterAccessMask.WRITE_DAC | FilePipePrinterAccessMask.WRITE_OWNER)
_HIDDEN = FileAttributes.FILE_ATTRIBUTE_HIDDEN | FileAttributes.FILE_ATTRIBUTE_TEMPORARY


def is_write_temp(name: str) -> bool:
    """A temporary file of an atomic write (ours): never listed, never synced."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def temp_path_for(path: str) -> str:
    folder = path.rpartition("/")[0]
    name = f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
    return f"{folder}/{name}" if folder else name


class SmbWriter(SmbPlumbing):
    """Mixed into SmbSource: uses its `_call`, `_unc`, `_kw`, `base`, `stat` and `chunk_size`."""

    def write(self, path: str, data: ByteStream, size: int,
              expect: SourceEntry | Absent | None = None) -> SourceEntry:
        """Replace atomically, streaming `size` bytes; the new file keeps the old one's owner
        and ACL where the account may set them."""
        return self._write(path, data, size, expect,
                           None if isinstance(expect, Absent) else path)

    def _write(self, path: str, data: ByteStream, size: int,
               expect: SourceEntry | Absent | None, security_of: str | None) -> SourceEntry:
        """`write`, the new file taking the owner and ACL of the file at `security_of` (the
        one it replaces, or the original of a copy), or none (a new file inherits them)."""
        self._check(path, expect)  # before the upload: no transfer for a lost cause
        temp = temp_path_for(path)
        f = self._call(path, self._create_temp, temp)
        try:  # no retry from here: `data` is being consumed
            self._call(path, self._copy_in, f, data, size, retry=False)
            if security_of is not None:
                self._call(path, self._copy_security, security_of, f, retry=False)
            self._check(path, expect)  # an edit during the upload is a conflict, not lost
            self._call(path, self._rename_over, f, path, not isinstance(expect, Absent),
                       retry=False)
        except BaseException:
            self._discard(f, temp)
            raise
        with contextlib.suppress(Exception):
            f.close()
        return self.stat(path)

    def delete(self, path: str, expect: SourceEntry | None = None) -> None:
        """Delete the file, then its folder if that left it empty (and its parents while
        empty): ScaiDrive deleting a folder's files leaves no empty shell at the source."""
        if expect is not None:
            check_expected(path, self.stat(path), expect)  # gone already: NotFound
        self._call(path, smbclient.remove, self._unc(path), **self._kw())
        self._remove_emptied(path.rpartition("/")[0])

    def _check(self, path: str, expect: SourceEntry | Absent | None) -> None:
        if expect is not None:
            check_expected(path, self._current(path), expect)

    def _current(self, path: str) -> SourceEntry | None:
        try:
            return self.stat(path)
        except errors.NotFound:  # a folder in the way counts as "not that file" too
            return None

    def _create_temp(self, temp: str) -> SMBFileIO:
        """A new hidden file beside the target (creating parent folders), open for writing."""
        parent = temp.rpartition("/")[0]
        if parent:
            smbclient.makedirs(self._unc(parent), exist_ok=True, **self._kw())
        f = SMBFileIO(self._unc(temp), mode="x", share_access="r", desired_access=_TEMP_ACCESS,
                      file_attributes=_HIDDEN, **self._kw())
        f.open()
        return f

    def _copy_in(self, f: SMBFileIO, data: ByteStream, size: int) -> None:
        step = min(self.chunk_size, f.fd.connection.max_write_size)
        written = 0
        while written < size:
            chunk = memoryview(data.read(min(step, size - written)))
            if not chunk:
                raise errors.SyncError(f"input ended after {written} of {size} bytes")
            while chunk:  # a WRITE may take less than offered (credits)
                done = f.write(chunk)
                chunk, written = chunk[done:], written + done

    def _copy_security(self, path: str, f: SMBFileIO) -> None:
        """`path`'s owner, group and ACL onto the temp file; the ACL alone where the
        account may not give files away (no SeRestorePrivilege); nothing if neither."""
        try:
            sd = self._security_of(path, _OWNER | _GROUP | _DACL)
        except SMBOSError as exc:
            log.debug("security descriptor not readable, not copied: %s", exc.ntstatus)
            return
        if sd is None:
            return
        for info in (_OWNER | _GROUP | _DACL, _DACL):
            try:
                _set_security(f, sd if info != _DACL else self._security_of(path, _DACL), info)
                return
            except SMBOSError as exc:
                log.debug("security descriptor (%#x) not set: %s", info, exc.ntstatus)

    def _security_of(self, path: str, info: int) -> bytes | None:
        """The file's self-relative security descriptor; None when there is no file."""
        raw = SMBFileIO(self._unc(path), mode="r", share_access="rwd",
                        desired_access=FilePipePrinterAccessMask.READ_CONTROL, **self._kw())
        tx = SMBFileTransaction(raw)
        query = SMB2QueryInfoRequest()
        query["info_type"] = _SECURITY
        query["output_buffer_length"] = 65535
        query["additional_information"] = info
        query["file_id"] = raw.fd.file_id

        def receive(request):
            response = SMB2QueryInfoResponse()
            response.unpack(raw.fd.connection.receive(request)["data"].get_value())
            return response["buffer"].get_value()
        try:
            with tx:
                tx += (query, receive)
        except SMBOSError as exc:
            if exc.errno == 2:  # ENOENT: a new file has nothing to copy
                return None
            raise
        return tx.results[0]

    def _rename_over(self, f: SMBFileIO, path: str, replace: bool) -> None:
        """The temp file becomes `path` in one step (MS-FSCC FileRenameInformation)."""
        rename = FileRenameInformation()
        rename["replace_if_exists"] = replace
        rename["file_name"] = beside(f.fd, path.rpartition("/")[2])
        tx = SMBFileTransaction(f)
        set_info(tx, rename)
        try:
            tx.commit()
        except SMBOSError as exc:
            if exc.ntstatus == _NAME_COLLISION and not replace:
                raise errors.ChangedAtSource("a file was created at the source meanwhile",
                                             path) from exc
            if exc.ntstatus == _ACCESS_DENIED and replace and self._may_delete(path):
                # Windows semantics: a file someone has open cannot be replaced. Not ours to
                # force: the original stays, the push is retried later.
                raise errors.FileInUse("the file is open at the file server; ScaiDrive's "
                                       "version is written once it is closed", path) from exc
            raise

    def _may_delete(self, path: str) -> bool:
        """Whether the account could replace `path` at all (DELETE access on it)."""
        try:
            with SMBFileIO(self._unc(path), mode="r", share_access="rwd",
                           desired_access=FilePipePrinterAccessMask.DELETE, **self._kw()):
                return True
        except SMBOSError:
            return False

    def _discard(self, f: SMBFileIO, temp: str) -> None:
        """Best effort: the temp file goes (else a later walk removes it once stale)."""
        with contextlib.suppress(Exception):
            f.close()
        with contextlib.suppress(Exception):
            smbclient.remove(self._unc(temp), **self._kw())


def beside(fd, name: str) -> str:
    """The share-relative name of `name` in the folder of the open `fd`: where the rename puts
    it, on the share the handle is on (also behind a DFS link, whose target names the folder
    otherwise than the connector's path does)."""
    folder = share_relative(fd.tree_connect, fd.file_name).rpartition("\\")[0]
    return f"{folder}\\{name}" if folder else name


def _set_security(f: SMBFileIO, sd: bytes | None, info: int) -> None:
    if sd is None:
        return
    req = SMB2SetInfoRequest()
    req["info_type"] = _SECURITY
    req["file_info_class"] = 0
    req["additional_information"] = info
    req["file_id"] = f.fd.file_id
    req["buffer"] = sd

    def receive(request):
        response = SMB2SetInfoResponse()
        response.unpack(f.fd.connection.receive(request)["data"].get_value())
        return response
    tx = SMBFileTransaction(f)
    tx += (req, receive)
    tx.commit()
