"""What the parts of `SmbSource` (listing, owners, writing, moving) use of it, declared once:
they are mixed into `source.SmbSource`, which defines every member below but the one helper
they share, `_remove_emptied` (a folder a delete or a move left empty goes too); and what the
compounds sent without smbclient's file objects share (owners, small_reads).

DFS: a path may lie behind a DFS link (the share is a DFS namespace root, or the connector's
folder or one below it is a link). smbclient's own opens follow the server's referral and keep
it in its referral cache; `resolved` names a path through that cache as those opens do, so a
compound (small reads, owner lookups) and a rename's new name (which the server reads relative
to the share the handle is on) go where the opens went. `learn_link` asks for a referral where
a compound met a link no open had followed yet."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import smbclient
from smbclient._pool import ClientConfig, dfs_request
from smbprotocol.connection import Connection
from smbprotocol.open import ShareAccess

from shared import errors
from shared.sources.base import ByteStream
from shared.sync.model import Absent, SourceEntry, Versioned

T = TypeVar("T")
REPLY_TIMEOUT_S = 60  # a compound's reply left unanswered this long: the connection is lost
SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | \
    ShareAccess.FILE_SHARE_DELETE  # never lock the file server's users out
PATH_NOT_COVERED = 0xC0000257  # the path crosses a DFS link: ask the root for a referral


def resolved(unc: str, kw: dict[str, Any]) -> tuple[Any, str]:
    """The tree `unc` is on and the name a CREATE on that tree gives it, through the DFS links
    smbclient's referral cache knows (as smbclient's own opens name it): share-relative, or
    whole (`server\\share\\...`) on a DFS root."""
    return smbclient._pool.get_smb_tree(unc, **kw)


def share_relative(tree, name: str) -> str:
    """`name` on `tree` (from `resolved` or an open) as a rename's new name gives it: relative
    to the share, also on a DFS root."""
    return "\\".join(name.split("\\")[2:]) if tree.is_dfs_share else name


def same_share(a, b) -> bool:
    """Whether two trees are the same share of the same session (a rename stays inside one)."""
    return a.session is b.session and a.share_name.lower() == b.share_name.lower()


def link_targets(unc: str) -> list[str]:
    """Where the DFS link `unc` lies behind leads (`\\\\server\\share[\\folder]`), as far as
    smbclient's referral cache knows."""
    entry = ClientConfig().lookup_referral([p for p in unc.split("\\") if p])
    return ["\\" + t.target_path for t in entry.target_list] if entry else []


def learn_link(tree, unc: str) -> bool:
    """Ask the DFS root `tree` for the referral of the link `unc` lies behind and keep it where
    smbclient's opens keep theirs; True when one now covers `unc`."""
    config = ClientConfig()
    config.cache_referral(dfs_request(tree, unc[1:]))
    return config.lookup_referral([p for p in unc.split("\\") if p]) is not None


class SmbPlumbing:
    base: str  # the connector's folder inside the share, '\\'-separated
    chunk_size: int

    def _unc(self, path: str = "") -> str:
        raise NotImplementedError

    def _kw(self) -> dict[str, Any]:
        raise NotImplementedError

    def _kept(self) -> list[Connection]:
        raise NotImplementedError

    def _fail(self, exc: BaseException, path: str | None,
              used: Sequence[Connection] | None = None) -> errors.SyncError:
        raise NotImplementedError

    def _call(self, path: str, fn: Callable[..., T], *args: Any, retry: bool = True,
              **kwargs: Any) -> T:
        raise NotImplementedError

    def stat(self, path: str) -> SourceEntry:
        raise NotImplementedError

    def open_read(self, path: str, size_hint: int | None = None, *,
                  expect: Versioned | None = None) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _write(self, path: str, data: ByteStream, size: int,
               expect: SourceEntry | Absent | None, security_of: str | None) -> SourceEntry:
        raise NotImplementedError

    def delete(self, path: str, expect: SourceEntry | None = None) -> None:
        raise NotImplementedError

    def _remove_emptied(self, folder: str) -> None:
        """Remove `folder` and then its parents while they are empty (never the base: ""). The
        server decides "empty" at that moment (an SMB rmdir refuses a folder holding anything,
        hidden files and files no scan saw included). Best effort: a folder that is not empty,
        or anything else, ends it."""
        while folder:
            try:
                if self._is_link(folder):
                    return
                self._call(folder, smbclient.rmdir, self._unc(folder), retry=False,
                           **self._kw())
            except errors.SyncError:
                return
            folder = folder.rpartition("/")[0]

    def _is_link(self, folder: str) -> bool:
        """Whether `folder` is a DFS link (what it holds is on another share than its parent):
        never removed nor renamed, which would remove or rename the folder it leads to and
        leave the namespace's link dangling. Only a DFS root holds links: elsewhere no round
        trip is made."""
        kw = self._kw()
        above = self._unc(folder.rpartition("/")[0])
        if not self._call(folder, resolved, above, kw)[0].is_dfs_share:
            return False
        unc = self._unc(folder)
        self._call(folder, smbclient.stat, unc, **kw)  # follows, so learns, a link on the way
        return not same_share(resolved(unc, kw)[0], resolved(above, kw)[0])
