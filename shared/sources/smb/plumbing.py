"""What the parts of `SmbSource` (listing, owners, writing, moving) use of it, declared once:
they are mixed into `source.SmbSource`, which defines every member below but the one helper
they share, `_remove_emptied` (a folder a delete or a move left empty goes too); and what the
compounds sent without smbclient's file objects share (owners, small_reads)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import smbclient
from smbprotocol.open import ShareAccess

from shared import errors
from shared.sync.model import SourceEntry

T = TypeVar("T")
REPLY_TIMEOUT_S = 60  # a compound's reply left unanswered this long: the connection is lost
SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | \
    ShareAccess.FILE_SHARE_DELETE  # never lock the file server's users out


def name_on(tree, unc: str) -> str:
    """The name a CREATE on `tree` gives `unc` (a path smbclient's `get_smb_tree` gave `tree`
    for): share-relative, or whole on a DFS share (as smbclient's own opens name it)."""
    split = unc.lstrip("\\").split("\\")
    return "\\".join(split if tree.is_dfs_share else split[2:])


class SmbPlumbing:
    base: str  # the connector's folder inside the share, '\\'-separated
    chunk_size: int

    def _unc(self, path: str = "") -> str:
        raise NotImplementedError

    def _kw(self) -> dict[str, Any]:
        raise NotImplementedError

    def _fail(self, exc: BaseException, path: str | None) -> errors.SyncError:
        raise NotImplementedError

    def _drop(self, log_off: bool = False) -> None:
        raise NotImplementedError

    def _call(self, path: str, fn: Callable[..., T], *args: Any, retry: bool = True,
              **kwargs: Any) -> T:
        raise NotImplementedError

    def stat(self, path: str) -> SourceEntry:
        raise NotImplementedError

    def _remove_emptied(self, folder: str) -> None:
        """Remove `folder` and then its parents while they are empty (never the base: ""). The
        server decides "empty" at that moment (an SMB rmdir refuses a folder holding anything,
        hidden files and files no scan saw included). Best effort: a folder that is not empty,
        or anything else, ends it."""
        while folder:
            try:
                self._call(folder, smbclient.rmdir, self._unc(folder), retry=False,
                           **self._kw())
            except errors.SyncError:
                return
            folder = folder.rpartition("/")[0]
