"""Two-way folder jobs (a path ending in "/": shared/sync/folders.py decided them): an empty
folder made at the source becomes a folder marker in ScaiDrive (a zero-byte object whose key
ends in "/"), a marker made in ScaiDrive a folder at the source, and a folder removed on one
side is removed on the other only if it is empty there at that moment:

- in ScaiDrive: the marker is deleted only while no other object lies under it;
- at the source: `Source.remove_folder_if_empty` (the server refuses a folder holding anything,
  files no scan saw included; then its parents while empty; never the connector's folder).

A folder ScaiDrive renamed by case only (MOVED_IN_SCAIDRIVE of a folder path) is renamed at
the source by its last name (`Source.respell_folder`), beside its files' own moves.

A folder that is not empty there stays, with what it holds; its index entry is dropped (it
travels with its contents now). Every outcome is "skipped": a folder is no file, so the run's
file counters (transferred, deleted) count files only.
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from services.transfer.source_writes import Worker
from shared.config.connector_model import Connector
from shared.contracts import ChangeKind, TransferJob
from shared.errors import NotFound
from shared.sync.folders import folder_record
from shared.sync.keys import object_key

DONE = "skipped"  # a folder's job moves no file


class FolderJobs:
    def __init__(self, transfers: Worker):
        self.t = transfers
        self.rt = transfers.rt

    async def apply(self, c: Connector, job: TransferJob) -> str:
        if job.kind is ChangeKind.MOVED_IN_SCAIDRIVE and job.from_path is not None:
            await self._folder_respelled(c, job.from_path.rstrip("/"), job.path.rstrip("/"))
            return DONE
        steps: dict[ChangeKind, Callable[[Connector, str], Awaitable[None]]] = {
            ChangeKind.CREATED: self._marker_made, ChangeKind.PUSHED: self._folder_made,
            ChangeKind.DELETED: self._marker_removed,
            ChangeKind.DELETED_IN_SCAIDRIVE: self._folder_removed}
        await steps[job.kind](c, job.path.rstrip("/"))
        return DONE

    def _marker_key(self, c: Connector, folder: str) -> str:
        return object_key(c.target_prefix, folder) + "/"

    async def _marker_made(self, c: Connector, folder: str) -> None:
        """An empty folder new at the source: its marker in ScaiDrive."""
        await self.t._thread(self.rt.storage.put_marker, c.target_share,
                             self._marker_key(c, folder))
        await self._record(c, folder)

    async def _folder_made(self, c: Connector, folder: str) -> None:
        """A marker new in ScaiDrive: the folder at the source."""
        await self.t._thread(lambda: self.t.sources.get(c).make_folder(folder))
        await self._record(c, folder)

    async def _marker_removed(self, c: Connector, folder: str) -> None:
        """Removed at the source: the marker goes, unless something lies under it now."""
        key, storage = self._marker_key(c, folder), self.rt.storage
        if not await self.t._thread(storage.holds_under, c.target_share, key):
            await self.t._thread(storage.remove, c.target_share, key)
        await self.rt.state.drop_index(c.id, folder + "/")

    async def _folder_removed(self, c: Connector, folder: str) -> None:
        """The marker deleted in ScaiDrive: the folder goes if it is empty at the source now
        (and the marker is still gone: one made again since keeps it)."""
        key = self._marker_key(c, folder)
        if await self.t._thread(self.rt.storage.stat, c.target_share, key) is None:
            await self.t._thread(lambda: self.t.sources.get(c).remove_folder_if_empty(folder))
        await self.rt.state.drop_index(c.id, folder + "/")

    async def _folder_respelled(self, c: Connector, old: str, new: str) -> None:
        """Renamed by case only in ScaiDrive (its files' moves are jobs of their own): the
        folder takes the new spelling at the source. Gone meanwhile: nothing to do. An empty
        folder's index entry (it has one if it was synced empty) takes the new spelling too."""
        try:
            await self.t._thread(lambda: self.t.sources.get(c).respell_folder(old, new))
        except NotFound:
            pass
        state = self.rt.state
        if await state.index_record(c.id, old + "/") is not None:
            await self._record(c, new)
            await state.drop_index(c.id, old + "/")

    async def _record(self, c: Connector, folder: str) -> None:
        """Both sides hold the empty folder now: its index entry (shared/sync/folders.py)."""
        await self.rt.state.put_index(c.id, folder + "/", folder_record(
            time.time(), c.identity_mapping.system_owner))
