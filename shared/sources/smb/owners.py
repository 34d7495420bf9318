"""Owner SIDs for `SmbSource.owners`: one compound per file (CREATE for READ_CONTROL + QUERY_INFO
of the owner only + CLOSE), OWNERS_IN_FLIGHT compounds on the wire at once from one thread.

Threads each waiting for their own round trip (the earlier way) spent most of the scanner's CPU
on lock hand-offs between them; a window of compounds sent ahead and collected in order keeps
the connection as busy with one thread, at about half the CPU per file.
"""
from __future__ import annotations

import logging
from collections import deque

import smbclient
from smbprotocol.exceptions import SMBException
from smbprotocol.file_info import FileAttributes
from smbprotocol.open import (
    CreateDisposition,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
    SMB2QueryInfoRequest,
    SMB2QueryInfoResponse,
)
from smbprotocol.security_descriptor import SMB2CreateSDBuffer

from shared import errors
from shared.sources.smb.ntstatus import connection_lost
from shared.sources.smb.plumbing import SmbPlumbing

log = logging.getLogger(__name__)
OWNERS_IN_FLIGHT = 32  # x 3 credits: well inside the window SmbSource asks for
REPLY_TIMEOUT_S = 60
_SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | \
    ShareAccess.FILE_SHARE_DELETE  # never lock the file server's users out


class SmbOwners(SmbPlumbing):
    """Mixed into SmbSource: uses its `_call`, `_unc`, `_kw` and `_drop`."""

    def owners(self, paths) -> dict[str, str | None]:
        """Owner SID per path; None where it cannot be read (the connector's default owner)."""
        paths = list(dict.fromkeys(paths))
        if not paths:
            return {}
        try:
            tree, _ = self._call("", smbclient._pool.get_smb_tree, self._unc(), **self._kw())
        except errors.SyncError:
            return dict.fromkeys(paths)
        out: dict[str, str | None] = {}
        window: deque = deque()
        try:
            for path in paths:
                while True:
                    try:
                        window.append(self._send_owner_query(tree, path))
                        break
                    except SMBException as exc:
                        if "credits" not in str(exc) or not window:
                            raise
                        _collect(out, *window.popleft())  # its reply hands credits back
                if len(window) >= OWNERS_IN_FLIGHT:
                    _collect(out, *window.popleft())
            while window:
                _collect(out, *window.popleft())
        except Exception as exc:
            log.debug("owner lookups stopped: %s", exc)
            if connection_lost(exc):
                self._drop()
        return {p: out.get(p) for p in paths}

    def _send_owner_query(self, tree, path: str) -> tuple:
        split = self._unc(path).lstrip("\\").split("\\")
        fd = Open(tree, "\\".join(split if tree.is_dfs_share else split[2:]))
        create, created = fd.create(
            ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.READ_CONTROL,
            FileAttributes.FILE_ATTRIBUTE_NORMAL, _SHARE_ALL, CreateDisposition.FILE_OPEN, 0,
            send=False)
        query = SMB2QueryInfoRequest()
        query["info_type"] = 3  # SMB2_0_INFO_SECURITY
        query["output_buffer_length"] = 4096
        query["additional_information"] = 0x1  # OWNER_SECURITY_INFORMATION
        query["file_id"] = fd.file_id  # the related-compound id: the CREATE's handle
        close, closed = fd.close(send=False)
        requests = fd.connection.send_compound(
            [create, query, close], tree.session.session_id, tree.tree_connect_id, related=True)
        return path, fd, requests, (created, _owner_of(fd), closed)


def _owner_of(fd: Open):
    def unpack(request) -> str:
        response = SMB2QueryInfoResponse()
        response.unpack(fd.connection.receive(request, timeout=REPLY_TIMEOUT_S)["data"]
                        .get_value())
        sd = SMB2CreateSDBuffer()
        sd.unpack(response["buffer"].get_value())
        return str(sd.get_owner())
    return unpack


def _collect(out: dict, path: str, fd: Open, requests: list, unpack: tuple) -> None:
    """Receive all three replies (smbprotocol keeps each until received); the owner from the
    second. A file gone or unreadable meanwhile answers errors to all three: owner unknown."""
    results = []
    for request, fn in zip(requests, unpack, strict=True):
        try:
            results.append(fn(request))
        except Exception as exc:
            if connection_lost(exc):
                raise
            results.append(None)
    out[path] = results[1]
