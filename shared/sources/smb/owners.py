"""Owner SIDs for `SmbSource.owners`: one compound per file (CREATE for READ_CONTROL + QUERY_INFO
of the owner only + CLOSE), OWNERS_IN_FLIGHT compounds on the wire at once from one thread.

Threads each waiting for their own round trip (the earlier way) spent most of the scanner's CPU
on lock hand-offs between them; a window of compounds sent ahead and collected in order keeps
the connection as busy with one thread, at about half the CPU per file.

Of the three replies only the status of the CREATE and CLOSE matters and only the owner SID of
the QUERY_INFO: they are read with `struct` (`sid_of`), not smbprotocol's per-field Structures
(which also re-parsed the CLOSE request and registered the handle for nothing): the replies'
parsing was ~30% of a first scan's CPU (py-spy, docs/PERFORMANCE.md §11). The requests are
packed with `struct` too (packed_requests.py). A path that became a symbolic link since it was
listed (the listing never follows one) is not followed: owner unknown. On a DFS root a path
behind a link is asked of the link's target (plumbing.resolved); a link no open has followed
yet answers PATH_NOT_COVERED, and its referral is asked for once before asking again.
"""
from __future__ import annotations

import logging
import struct
from collections import deque

from smbprotocol.exceptions import SMBException
from smbprotocol.file_info import InfoType
from smbprotocol.open import FilePipePrinterAccessMask

from shared.sources.smb import packed_requests as packed
from shared.sources.smb.ntstatus import connection_lost
from shared.sources.smb.plumbing import (
    PATH_NOT_COVERED,
    REPLY_TIMEOUT_S,
    SHARE_ALL,
    SmbPlumbing,
    learn_link,
    resolved,
)

log = logging.getLogger(__name__)
OWNERS_IN_FLIGHT = 32  # x 3 credits: well inside the window SmbSource asks for
_QUERY_INFO = struct.Struct("<2xHI")  # MS-SMB2 2.2.38: size, buffer offset, buffer length
_SD_OWNER = struct.Struct("<4xI")  # MS-DTYP 2.4.6: revision, sbz1, control, OffsetOwner


class SmbOwners(SmbPlumbing):
    """Mixed into SmbSource: uses its `_call`, `_unc`, `_kw`, `_kept` and `_fail`."""

    def owners(self, paths) -> dict[str, str | None]:
        """Owner SID per path; None where the file's owner cannot be read (gone, unreadable:
        the connector's default owner). A connection lost on the way (dropped, or a session
        the server ended: a Kerberos ticket's end) is made again and the paths left are asked
        again, once; lost again, the lookup fails (errors.Transient): files nobody could ask
        about never go to the default owner."""
        paths = list(dict.fromkeys(paths))
        if not paths:
            return {}
        out: dict[str, str | None] = {}
        for again in (False, True):
            root, base = self._call("", resolved, self._unc(), self._kw())
            used = self._kept()  # a connection made meanwhile by another thread is not ours
            try:
                behind_links = self._query(root, base, [p for p in paths if p not in out], out)
                if behind_links:  # DFS links no open had followed yet: learned, asked again
                    self._query(root, base, [p for p in behind_links if self._learn(root, p)],
                                out)
                break
            except Exception as exc:
                error = self._fail(exc, None, used)
                if again or not connection_lost(exc):
                    raise error from exc
                log.info("SMB connection lost while reading owners; asking the rest again")
        return {p: out.get(p) for p in paths}

    def _query(self, root, base: str, paths: list[str], out: dict[str, str | None]) -> list[str]:
        """Owners of `paths` into `out`, OWNERS_IN_FLIGHT compounds at a time; the paths that
        lie behind a DFS link whose referral is not known yet (their owner is left out)."""
        window: deque = deque()
        behind_links: list[str] = []

        def collect() -> None:
            path, connection, requests = window.popleft()
            if _collect(out, path, connection, requests):
                behind_links.append(path)

        for path in paths:
            while True:
                try:
                    window.append(self._send_owner_query(root, base, path))
                    break
                except SMBException as exc:
                    if "credits" not in str(exc) or not window:
                        raise
                    collect()  # its reply hands credits back
            if len(window) >= OWNERS_IN_FLIGHT:
                collect()
        while window:
            collect()
        return behind_links

    def _send_owner_query(self, root, base: str, path: str) -> tuple:
        unc = self._unc(path)
        if root.is_dfs_share:  # a DFS root: the path may lie behind a link, on another share
            tree, name = resolved(unc, self._kw())
        else:
            tree, name = root, "\\".join(filter(None, [base, *path.split("/")]))
        connection = tree.session.connection
        requests = connection.send_compound([
            packed.create(name, FilePipePrinterAccessMask.READ_CONTROL, SHARE_ALL),
            packed.query_info(InfoType.SMB2_0_INFO_SECURITY, 0, 4096, 0x1),  # the owner only
            packed.close()], tree.session.session_id, tree.tree_connect_id, related=True)
        return path, connection, requests

    def _learn(self, root, path: str) -> bool:
        """Whether a DFS referral now covers `path` (asked for unless one already does)."""
        unc = self._unc(path)
        if resolved(unc, self._kw())[0] is not root:
            return True  # learned already, for another path behind the same link
        try:
            return learn_link(root, unc)
        except Exception as exc:
            log.debug("no DFS referral for %s: %s", path, exc)
            return False


def sid_of(sd: bytes) -> str | None:
    """The owner SID, in its string form, of a self-relative security descriptor (MS-DTYP
    2.4.6, 2.4.2.2); None if it names no owner."""
    (offset,) = _SD_OWNER.unpack_from(sd)
    if offset == 0:
        return None
    revision, count = sd[offset], sd[offset + 1]
    authority = int.from_bytes(sd[offset + 2:offset + 8], "big")
    subs = struct.unpack_from(f"<{count}I", sd, offset + 8)
    return f"S-{revision}-{authority}-" + "-".join(map(str, subs))


def _owner_in(reply) -> str | None:
    data = reply["data"].get_value()
    offset, length = _QUERY_INFO.unpack_from(data)
    return sid_of(data[offset - 64:offset - 64 + length])  # the offset counts the SMB2 header


def _collect(out: dict, path: str, connection, requests: list) -> bool:
    """Receive all three replies (smbprotocol keeps each until received; a reply that is an
    error raises); the owner from the second. A file gone or unreadable meanwhile answers
    errors to all three: owner unknown. True when the path crosses a DFS link (not in `out`)."""
    owner, behind_link = None, False
    for i, request in enumerate(requests):
        try:
            reply = connection.receive(request, timeout=REPLY_TIMEOUT_S, resolve_symlinks=False)
            if i == 1:
                owner = _owner_in(reply)
        except Exception as exc:
            if connection_lost(exc):
                raise
            behind_link = behind_link or getattr(exc, "status", None) == PATH_NOT_COVERED
    if not behind_link:
        out[path] = owner
    return behind_link
