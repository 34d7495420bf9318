"""Renaming a file in a SharePoint library (`SharePointSource.move`): a file renamed in
ScaiDrive is renamed in SharePoint, no bytes sent, its item id (and version history) kept.

Microsoft's documented move: PATCH the driveItem with its new `parentReference.id` and
`name`. Conditional like the writes: the item is read and compared with the expected version,
then its eTag goes along as If-Match (412: changed meanwhile); the PATCH's conflict behaviour
is Graph's default, "fail" (409 nameAlreadyExists: something holds the new name, never
replaced). Missing parent folders are created first (POST children, conflictBehavior "fail";
one made by someone else meanwhile is used; `make_folder` is `_folder_id` too). The folder a
move leaves empty is removed afterwards, while it holds nothing (folders).
"""
from __future__ import annotations

from typing import Any

from shared import errors
from shared.sources.sharepoint import delta
from shared.sources.sharepoint.folder_cache import FolderCache
from shared.sources.sharepoint.graph import GraphSession
from shared.sources.sharepoint.graph_errors import NameConflict
from shared.sync.model import SourceEntry, check_expected

CREATED_MEANWHILE = "a file was created at the source meanwhile"


class SharePointMover:
    """Mixed into SharePointSource, which defines every member below."""

    graph: GraphSession
    listed: FolderCache

    def _drive(self, client: Any) -> Any:
        raise NotImplementedError

    def _by_path(self, client: Any, path: str) -> Any:
        raise NotImplementedError

    async def _file(self, path: str) -> dict:
        raise NotImplementedError

    async def _move(self, old: str, new: str, expect: SourceEntry) -> SourceEntry:
        self.listed.discard(old)
        self.listed.discard(new)
        item = await self._file(old)  # NotFound when gone
        check_expected(old, delta.entry_of(old, item), expect)
        holder = await self._item_at(new)  # the item itself in a case-only rename
        if holder is not None and holder.get("id") != item["id"]:
            raise errors.ChangedAtSource(CREATED_MEANWHILE, new)
        folder, _, name = new.rpartition("/")
        parent_id = await self._folder_id(folder)
        try:
            moved = await self.graph.json(
                lambda c: self._patch(c, item["id"], item["eTag"], parent_id, name), old)
        except NameConflict as exc:
            raise errors.ChangedAtSource(CREATED_MEANWHILE, new) from exc
        return delta.entry_of(new, moved)

    async def _item_at(self, path: str) -> dict | None:
        """The driveItem (file or folder) at `path`, or None."""
        try:
            return await self.graph.json(
                lambda c: (self._by_path(c, path) if path else
                           self._drive(c).items.by_drive_item_id("root"))
                .to_get_request_information(), path)
        except errors.NotFound:
            return None

    async def _folder_id(self, folder: str) -> str:
        """The id of the folder at `folder` ("": the root), made with its parents if missing."""
        found = await self._item_at(folder)
        if found is not None:
            return _folder(found, folder)
        parent, _, name = folder.rpartition("/")
        parent_id = await self._folder_id(parent)
        made: dict | None
        try:
            made = await self.graph.json(lambda c: self._new_folder(c, parent_id, name), folder)
        except NameConflict:  # made by someone else meanwhile
            made = await self._item_at(folder)
        if made is None:
            raise errors.Transient("a folder appeared and vanished meanwhile", folder)
        return _folder(made, folder)

    def _new_folder(self, client: Any, parent_id: str, name: str) -> Any:
        from msgraph.generated.models.drive_item import DriveItem
        from msgraph.generated.models.folder import Folder

        body = DriveItem(name=name, folder=Folder(),
                         additional_data={"@microsoft.graph.conflictBehavior": "fail"})
        return self._drive(client).items.by_drive_item_id(parent_id).children \
            .to_post_request_information(body)

    def _patch(self, client: Any, item_id: str, etag: str, parent_id: str, name: str) -> Any:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.models.drive_item import DriveItem
        from msgraph.generated.models.item_reference import ItemReference

        config: RequestConfiguration[None] = RequestConfiguration()
        config.headers.add("If-Match", etag)
        body = DriveItem(name=name, parent_reference=ItemReference(id=parent_id))
        return self._drive(client).items.by_drive_item_id(item_id) \
            .to_patch_request_information(body, config)


def _folder(item: dict, path: str) -> str:
    if "folder" not in item and "root" not in item:
        raise errors.ChangedAtSource("a file holds the name of a folder", path)
    return str(item["id"])
