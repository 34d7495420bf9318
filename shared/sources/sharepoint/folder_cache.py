"""Download URLs read a folder at a time, so that copying many files of one folder does not cost
a Graph request per file before its download.

A read needs the file's driveItem: its version (size, quickXorHash, eTag) and its
pre-authenticated `@microsoft.graph.downloadUrl`. One `GET items/root:/{path}:` per file is
one Graph request per file on top of the download. A folder's children listing carries the
same fields for up to 200 files a page: the first read of a folder fetches a page, and reads of
its siblings take their driveItem from it. Transfers arrive grouped by folder (the scanner
publishes in listing order), so an initial sync costs about one request per 200 files.

Download URLs are secrets (pre-authenticated) and short-lived (about an hour):
- they are kept in this process's memory only, and never logged;
- a listed item serves one read (it is taken out): a retry, a redelivery or a later run asks
  again, never reuses it;
- a folder's listing is dropped `TTL_S` after its first page and `IDLE_S` after it last
  served a read (its burst of transfers is over: the next run must not read it);
- pages are fetched lazily and never more of them than reads were asked of the folder, so a
  wide folder with one changed file costs at most one page on top of the item request.
The caller (`SharePointSource.open_read`) checks the listed version against the one it was
asked for and falls back to a fresh item request when they differ or the download URL fails.

Runs on the Graph session's event loop only (no locks but the per-folder asyncio one).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared import errors
from shared.sources.sharepoint.delta import is_file

log = logging.getLogger(__name__)

TTL_S = 600.0  # well under the URLs' hour
IDLE_S = 60.0
MAX_FOLDERS = 64  # folders held at once (least recently used dropped first)
# What a read needs of each child (Graph sends an annotation under $select only when named).
SELECT = ["id", "name", "size", "file", "folder", "package", "eTag", "cTag",
          "lastModifiedDateTime", "@microsoft.graph.downloadUrl"]
_URL_KEYS = ("@microsoft.graph.downloadUrl", "@content.downloadUrl")  # the OneDrive API's name

# (folder path, the last page's nextLink or None for the first page) -> a children page's JSON
FetchPage = Callable[[str, str | None], Awaitable[dict[str, Any]]]


def download_url(item: dict) -> str | None:
    return next((item[k] for k in _URL_KEYS if item.get(k)), None)


@dataclass
class _Folder:
    born: float
    used: float
    items: dict[str, dict] = field(default_factory=dict)  # by name; files not yet read
    next_link: str | None = None
    pages: int = 0
    asked: int = 0  # reads asked of this folder: the most pages it may cost
    done: bool = False  # every page is in, or listing failed
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FolderCache:
    """Listed driveItems of files, by folder, for one drive (one per source)."""

    def __init__(self, fetch: FetchPage, clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._clock = clock
        self._folders: OrderedDict[str, _Folder] = OrderedDict()
        self.pages_fetched = 0  # for tests and benchmarks

    async def take(self, path: str) -> dict | None:
        """The driveItem JSON of the file at `path` as its folder's listing gave it (taken out:
        it serves this read only), or None: not listed (yet), or not worth another page."""
        folder_path, _, name = path.rpartition("/")
        folder = self._folder(folder_path)
        folder.asked += 1
        async with folder.lock:
            while True:
                item = folder.items.pop(name, None)
                if item is not None:
                    folder.used = self._clock()
                    return item
                if folder.done or folder.pages >= folder.asked:
                    return None
                try:
                    page = await self._fetch(folder_path, folder.next_link)
                except errors.SyncError as exc:  # the item request will say what is wrong
                    log.debug("folder listing for download URLs failed: %s", type(exc).__name__)
                    folder.done = True
                    return None
                self.pages_fetched += 1
                folder.pages += 1
                for child in page.get("value") or []:
                    if is_file(child) and (download_url(child) or child.get("size") == 0):
                        folder.items[child["name"]] = child
                folder.next_link = page.get("@odata.nextLink")
                folder.done = not folder.next_link

    def discard(self, path: str) -> None:
        """Forget the listed item at `path` (we are writing or deleting it)."""
        folder_path, _, name = path.rpartition("/")
        folder = self._folders.get(folder_path)
        if folder is not None:
            folder.items.pop(name, None)

    def clear(self) -> None:
        self._folders.clear()

    def _folder(self, folder_path: str) -> _Folder:
        """The folder's listing state, a new one where the old has expired."""
        now = self._clock()
        for key in [k for k, f in self._folders.items()
                    if now - f.born > TTL_S or now - f.used > IDLE_S]:
            del self._folders[key]
        folder = self._folders.get(folder_path)
        if folder is None:
            folder = self._folders[folder_path] = _Folder(born=now, used=now)
            while len(self._folders) > MAX_FOLDERS:
                self._folders.popitem(last=False)
        self._folders.move_to_end(folder_path)
        return folder
