"""Folders in a SharePoint library (two-way: empty folders travel): `make_folder` creates one
(and its parents), `remove_folder_if_empty` removes one only while it holds nothing, then its
parents while they are empty (`_remove_emptied`, which a delete and a move use too), and
`respell_folder` gives one a new spelling (a folder renamed by case only in ScaiDrive).

Graph has no "remove this folder if empty", and its DELETE takes a folder's whole subtree to
the recycle bin. So the folder item is read first (its `folder.childCount` and eTag): anything
in it (a file, a folder, a package, files no listing saw) and it stays; else it is deleted with
If-Match on that eTag. A folder's eTag changes when a child is added, removed or renamed, so a
child that arrives between the read and the DELETE makes the DELETE a 412 and the folder
stays with it. The library's root (the connector's folder, "") is never removed.

A respelling is a PATCH of the folder item's `name` (Microsoft's documented rename), found by
path (Graph ignores case, parents included): the item keeps its id, its children follow. The
item read first says whether it is already spelled so (nothing sent); the PATCH carries
If-Match on that read's eTag, so a folder renamed otherwise meanwhile is never renamed back.
A child saved meanwhile changes that eTag too (412): the folder is read again and the PATCH
tried again, a few times.
"""
from __future__ import annotations

import logging
from typing import Any

from shared import errors
from shared.sources.base import check_respelling
from shared.sources.sharepoint.graph import if_match
from shared.sources.sharepoint.moving import SharePointMover
from shared.sources.sharepoint.names import check_path

log = logging.getLogger(__name__)
RESPELL_TRIES = 3  # PATCHes refused for an eTag that changed (a child saved meanwhile)


class SharePointFolders(SharePointMover):
    """Mixed into SharePointSource: folders are made by the mover's `_folder_id`."""

    def make_folder(self, path: str) -> None:
        """Create the folder (and its parents); one already there is fine."""
        self.graph.run(self._folder_id(check_path(path, for_write=True)))

    def remove_folder_if_empty(self, path: str) -> bool:
        """Remove the folder if it holds nothing now, then its parents while empty. False: it
        holds something (or is no folder), and stays. A folder already gone counts as removed."""
        if not path:
            return False  # the library's root, the connector's folder: never
        return self.graph.run(self._remove_if_empty(check_path(path)))

    async def _remove_if_empty(self, path: str) -> bool:
        if not await self._rmdir_if_empty(path):
            return False
        await self._remove_emptied(path.rpartition("/")[0])
        return True

    async def _remove_emptied(self, folder: str) -> None:
        """Remove `folder` and then its parents while they are empty (never the root: "").
        Best effort: a folder that holds something, or any failure, ends it."""
        while folder:
            try:
                if not await self._rmdir_if_empty(folder):
                    return
            except errors.SyncError as exc:
                log.debug("an emptied folder stays: %s", type(exc).__name__)
                return
            folder = folder.rpartition("/")[0]

    async def _rmdir_if_empty(self, path: str) -> bool:
        """True: the folder is gone (removed now, or already); False: it holds something, or
        the name is no folder's, and it stays."""
        item = await self._item_at(path)
        if item is None:
            return True
        if not _empty_folder(item):
            return False
        try:
            await self.graph.call(lambda c: self._drive(c).items.by_drive_item_id(item["id"])
                                  .delete(request_configuration=if_match(item["eTag"])), path)
        except errors.ChangedAtSource:  # 412: a child came (or went) since the read
            return False
        except errors.NotFound:
            pass  # removed by someone else meanwhile
        return True

    def respell_folder(self, old: str, new: str) -> None:
        """PATCH the folder's name to the new spelling of its last component (parents found
        whatever their case); already spelled so: nothing to do. NotFound: no such folder."""
        name = check_respelling(old, new)
        check_path(old)
        check_path(new, for_write=True)
        self.graph.run(self._respell(old, name))

    async def _respell(self, old: str, name: str) -> None:
        for attempt in range(1, RESPELL_TRIES + 1):
            item = await self._item_at(old)
            if item is None or "folder" not in item or "root" in item:
                raise errors.NotFound("no such folder", old)
            if item.get("name") == name:
                return  # already spelled so (a redelivered job)

            def request(client: Any, read: dict = item) -> Any:
                return self._rename(client, read["id"], read["eTag"], name)

            try:
                await self.graph.json(request, old)
                return
            except errors.ChangedAtSource:  # 412: the folder changed since the read
                if attempt == RESPELL_TRIES:
                    raise

    def _rename(self, client: Any, item_id: str, etag: str, name: str) -> Any:
        from msgraph.generated.models.drive_item import DriveItem

        return self._drive(client).items.by_drive_item_id(item_id) \
            .to_patch_request_information(DriveItem(name=name), if_match(etag))


def _empty_folder(item: dict) -> bool:
    """A folder (not the root, not a package) whose facet says it holds nothing."""
    facet = item.get("folder")
    return isinstance(facet, dict) and "root" not in item and facet.get("childCount") == 0
