"""What saving an SMB connector checks at the file server, so that a wrong password or share is a
refusal at its field and not a failed first sync hours later (`SmbSource.check_access`):

1. connect and log on (the server answers; the account and password are accepted);
2. open the share and list the connector's folder (the share and the folder exist, the account
   may read them);
3. two-way only: the rights the account holds on that folder, asked as SMB2 maximal access in
   the CREATE that opens it (MS-SMB2 2.2.13.2.5): nothing is written to the file server.

Each check is a `Check` with the connector field to blame when it fails and a sentence an admin
understands; the raw error is kept as the detail.
"""
from __future__ import annotations

from dataclasses import dataclass

import smbclient
from smbprotocol.create_contexts import (
    CreateContextName,
    SMB2CreateContextRequest,
    SMB2CreateQueryMaximalAccessRequest,
)
from smbprotocol.file_info import FileAttributes
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
)

from shared import errors
from shared.sources.smb.plumbing import SmbPlumbing, resolved

# What writing back into the folder needs: create files and folders, delete what it replaces.
WRITE_RIGHTS = {"create files": DirectoryAccessMask.FILE_ADD_FILE,
                "create folders": DirectoryAccessMask.FILE_ADD_SUBDIRECTORY,
                "delete files": DirectoryAccessMask.FILE_DELETE_CHILD}
_SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | \
    ShareAccess.FILE_SHARE_DELETE


@dataclass(frozen=True)
class Check:
    name: str  # "logon", "folder", "write access"
    ok: bool
    message: str  # plain words
    field: str | None = None  # the connector field to blame when not ok
    detail: str | None = None  # the server's own words


class SmbAccessCheck(SmbPlumbing):
    """Mixed into SmbSource: uses its `_call`, `_unc`, `_kw`, and its host/share/base."""

    host: str
    share: str
    base: str

    def check_access(self, write: bool) -> list[Check]:
        """The checks in order, stopping at the first that fails."""
        try:
            self._call("", resolved, self._unc(), self._kw())
        except errors.SyncError as exc:
            return [_logon_failure(self.host, self.share, exc)]
        checks = [Check("logon", True, f"logged on to {self.host} and opened the share "
                                       f"'{self.share}'")]
        folder = self.base or "(the share's root)"
        try:
            self._call("", _first_entry, self._unc(), **self._kw())
        except errors.SyncError as exc:
            return checks + [_folder_failure(folder, self.share, exc)]
        checks.append(Check("folder", True, f"listed {folder}"))
        if write:
            checks.append(self._write_access(folder))
        return checks

    def _write_access(self, folder: str) -> Check:
        try:
            granted = self._call("", _maximal_access, self._unc(), self._kw())
        except errors.SyncError as exc:
            return Check("write access", False, "could not ask the file server which rights "
                         "the account holds on the folder", "username", str(exc))
        missing = [name for name, bit in WRITE_RIGHTS.items() if not granted & bit]
        if missing:
            return Check("write access", False, f"two-way needs the account to {', '.join(missing)}"
                         f" in {folder}; it may not", "username", f"maximal access 0x{granted:08x}")
        return Check("write access", True, f"the account may create and delete files in {folder}")


def _first_entry(unc: str, **kw) -> None:
    with smbclient.scandir(unc, **kw) as entries:
        next(iter(entries), None)


def _maximal_access(unc: str, kw: dict) -> int:
    """The access mask the server would grant the account on the folder (no write made): on
    the share the folder is on (a DFS link's target, once the listing has followed it)."""
    fd = Open(*resolved(unc, kw))
    context = SMB2CreateContextRequest()
    context["buffer_name"] = CreateContextName.SMB2_CREATE_QUERY_MAXIMAL_ACCESS_REQUEST
    context["buffer_data"] = SMB2CreateQueryMaximalAccessRequest()
    replies = fd.create(ImpersonationLevel.Impersonation, DirectoryAccessMask.FILE_LIST_DIRECTORY,
                        FileAttributes.FILE_ATTRIBUTE_DIRECTORY, _SHARE_ALL,
                        CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE,
                        create_contexts=[context])
    try:
        for reply in replies or []:
            if "maximal_access" in reply.fields:
                return int(reply["maximal_access"].get_value())
        raise errors.SyncError("the file server did not answer the maximal access query", None)
    finally:
        fd.close()


def _logon_failure(host: str, share: str, exc: errors.SyncError) -> Check:
    if isinstance(exc, errors.NtlmRefused):
        return Check("logon", False, "the domain refuses NTLM logons: choose Kerberos",
                     "smb_auth", str(exc))
    if isinstance(exc, errors.AuthFailed):
        return Check("logon", False, "the file server refused this user name and password",
                     "password", str(exc))
    if isinstance(exc, errors.ConfigInvalid):  # Kerberos: a server name the domain lacks
        return Check("logon", False, str(exc).split(" (")[0], exc.field, str(exc))
    if isinstance(exc, errors.KerberosUnavailable):
        return Check("logon", False, str(exc).split(" (")[0], "smb_auth", str(exc))
    if isinstance(exc, errors.NotFound):
        return Check("logon", False, f"{host} has no share named '{share}'", "server", str(exc))
    if isinstance(exc, errors.PermissionDenied):
        return Check("logon", False, f"the account may not open the share '{share}'",
                     "username", str(exc))
    return Check("logon", False, f"could not reach a file server at {host}: check the name "
                 "and port, and that the server is up", "server", str(exc))


def _folder_failure(folder: str, share: str, exc: errors.SyncError) -> Check:
    if isinstance(exc, errors.PermissionDenied):
        return Check("folder", False, f"the account may not list {folder}", "username", str(exc))
    if isinstance(exc, errors.NotFound):
        return Check("folder", False, f"the share '{share}' has no folder {folder}", "server",
                     str(exc))
    return Check("folder", False, f"could not list {folder}", "server", str(exc))
