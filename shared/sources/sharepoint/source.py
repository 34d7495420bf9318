"""SharePoint Online backend of `Source`: one document library (a Graph drive), on Microsoft
Graph through msgraph-sdk and azure-identity (see shared/sources/sharepoint/graph.py for the
wiring).

- list(): the drive root's delta query (delta_feed: a position's changes, or a full
  enumeration kept page by page); paths are rebuilt from parent ids (delta, delta_listing);
- stat/open_read/delete address items by path, `items/root:/{path}:`, Microsoft's documented
  form; downloads stream the pre-authenticated URL, verified against the quickXorHash;
- open_read with the version wanted (a transfer's) takes the URL from a listing of the file's
  folder (folder_cache: one request a page of siblings, not one per file), and falls back to
  the item request when the listed version is not the one wanted or its URL fails;
- write(): an upload session by path (Graph creates missing parent folders), fixed-size chunks
  PUT in order without Authorization (upload_session); nothing is committed unless every byte
  arrived;
- conditional write/delete: the item is read and compared with the expected version, then its
  eTag goes along as If-Match, which Graph checks again when an upload commits (412: another
  version landed meanwhile); "must not exist" is conflictBehavior "fail" (409);
- move(): a PATCH of the item's parent and name, If-Match, never over an existing name (moving);
- folders (two-way: empty ones travel): the listing reports the folders that hold nothing
  (delta), make_folder creates one with its parents, remove_folder_if_empty removes one only
  while Graph says it holds nothing (If-Match on its eTag), respell_folder PATCHes a folder's
  name to a new spelling (case only); a delete or a move removes the folders it leaves empty
  (folders).
Paths are library-relative, '/'-separated. Methods are blocking and thread-safe.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration

from shared import errors
from shared.sources.base import ByteStream
from shared.sources.sharepoint import delta, folder_cache
from shared.sources.sharepoint.delta_feed import SharePointDeltaFeed
from shared.sources.sharepoint.delta_listing import DeltaListing
from shared.sources.sharepoint.folders import SharePointFolders
from shared.sources.sharepoint.graph import (
    GraphCredentials,
    GraphEndpoint,
    GraphSession,
    if_match,
)
from shared.sources.sharepoint.graph_errors import NameConflict
from shared.sources.sharepoint.names import check_path
from shared.sources.sharepoint.reading import DownloadReader, reader_of
from shared.sources.sharepoint.upload_session import send_chunks
from shared.sync.model import (
    Absent,
    DeltaCursor,
    ListFailure,
    Listing,
    SourceEntry,
    Versioned,
    check_expected,
    gather,
    same_content,
)

log = logging.getLogger(__name__)

class SharePointSource(SharePointFolders, SharePointDeltaFeed):
    def __init__(self, endpoint: GraphEndpoint, creds: GraphCredentials, drive_id: str):
        self.drive_id = drive_id
        self.graph = GraphSession(endpoint, creds)  # tests replace graph.sleep
        # By path, from the last listing: the files it did not rebuild unchanged from the index
        # (`_from_index`: such a file's owner is its index record's), until `owners` gives them.
        self._owners: dict[str, str | None] = {}
        self._from_index = False
        self.listed = folder_cache.FolderCache(self._children)  # lives on the session's loop

    # --- plumbing -----------------------------------------------------------------------

    def _drive(self, client):
        return client.drives.by_drive_id(self.drive_id)

    def _by_path(self, client, path: str):
        return self._drive(client).items.by_drive_item_id(f"root:/{path}:")

    # --- listing ------------------------------------------------------------------------

    def walk(self, cursor: DeltaCursor | None = None) -> Iterator[Listing]:
        """The files the position and the changes since hold, then the indexed files they leave
        out a page of the index at a time (`delta_listing`), then the position to save: what is
        held is the folders and the run's changes, not the library (but in a full enumeration,
        whose items are all the library's)."""
        started = time.time()
        try:
            items, gone, before, link, resynced = self.graph.run(self._delta(cursor))
        except errors.SyncError as exc:  # the library could not be read at all
            yield Listing(failures=[ListFailure("", exc.cause, str(exc))], complete=False)
            return
        listing = DeltaListing(items, gone, before)  # here: the loop serves other threads
        self._owners = listing.owners
        self._from_index = cursor is not None and cursor.index_pages is not None
        for part in listing.listed():
            yield Listing(entries=part)
        for page in cursor.pages() if cursor is not None else ():
            yield Listing(entries=listing.from_index(page))
        # Enumerated in full (no position, or one given up): the items are the library's as of
        # when the listing began; else they are as old as the position's last full listing.
        full = cursor is None or cursor.link is None or resynced
        new = DeltaCursor(link, listing.position(),
                          started if full or cursor is None else cursor.full_at,
                          vouched=listing.vouched, folders=listing.folders())
        yield Listing(cursor=new, resynced=resynced, empty_folders=listing.empty_folders())

    def list(self, cursor: DeltaCursor | None = None) -> Listing:
        return gather(self.walk(cursor))

    # --- single files -------------------------------------------------------------------

    async def _file(self, path: str) -> dict:
        check_path(path)
        item = await self.graph.json(
            lambda c: self._by_path(c, path).to_get_request_information(), path)
        if not delta.is_file(item):
            raise errors.NotFound("is a folder, not a file", path)
        return item

    def stat(self, path: str) -> SourceEntry:
        return delta.entry_of(path, self.graph.run(self._file(path)))

    @contextlib.contextmanager
    def open_read(self, path: str, size_hint: int | None = None, *,
                  expect: Versioned | None = None) -> Iterator[DownloadReader]:
        """Without a version wanted: the version as fetched now. With one (`size_hint`, the
        listed size, or `expect`, the listed version): the version a listing of the folder made
        moments ago gives, when it is that one and its download URL works; else as fetched
        now. Either way `reader.entry` is the version whose bytes are read."""
        check_path(path)
        reader = None
        if size_hint is not None or expect is not None:
            reader = self._open_listed(path, size_hint, expect)
        if reader is None:
            item = self.graph.run(self._file(path))
            reader = reader_of(self.graph, path, item, False, self._renewed_url)
            try:
                reader.open()
            except BaseException:
                reader.close()
                raise
        try:
            yield reader
        finally:
            reader.close()

    def _open_listed(self, path: str, size_hint: int | None,
                     expect: Versioned | None) -> DownloadReader | None:
        """An opened reader of the listed version of `path`, or None: not listed, not the
        version wanted, or its URL refused (expired, revoked, the file gone)."""
        item = self.graph.run(self.listed.take(path))
        if item is None:
            return None
        reader = reader_of(self.graph, path, item, True, self._renewed_url)
        if (size_hint is not None and reader.entry.size != size_hint) or \
                (expect is not None and not same_content(reader.entry, expect)):
            log.debug("listed version of a file is not the one wanted: fetching the item")
            return None
        try:
            reader.open()
        except errors.SyncError as exc:
            reader.close()
            log.debug("listed download URL failed (%s): fetching the item", type(exc).__name__)
            return None
        return reader

    def _renewed_url(self, entry: SourceEntry) -> str | None:
        """A new download URL for `entry`'s version (its URL's hour ran out mid-read); None
        when the file at its path is no longer that version (another item, other bytes)."""
        item = self.graph.run(self._file(entry.path))
        now = delta.entry_of(entry.path, item)
        if now.file_id != entry.file_id or not same_content(now, entry):
            return None
        return folder_cache.download_url(item)

    async def _children(self, folder: str, link: str | None) -> dict:
        """A page of a folder's children with what a read needs (folder_cache.SELECT)."""
        from msgraph.generated.drives.item.items.item.children.children_request_builder import (
            ChildrenRequestBuilder,
        )

        def request(client: Any) -> Any:
            children = self._drive(client).items.by_drive_item_id(
                f"root:/{folder}:" if folder else "root").children
            if link:
                return children.with_url(link).to_get_request_information()
            config = RequestConfiguration(query_parameters=ChildrenRequestBuilder.
                                          ChildrenRequestBuilderGetQueryParameters(
                                              select=folder_cache.SELECT))
            return children.to_get_request_information(config)

        return await self.graph.json(request, folder)

    def delete(self, path: str, expect: SourceEntry | None = None) -> None:
        """Files only: a folder's delete would take its whole subtree to the recycle bin.
        With `expect`, If-Match on the eTag read: an edit landing meanwhile makes it a 412.
        Then the folder this left empty goes, and its parents while empty (folders)."""
        async def delete() -> None:
            self.listed.discard(path)
            item = await self._file(path)
            if expect is not None:
                check_expected(path, delta.entry_of(path, item), expect)
            config = if_match(item["eTag"] if expect is not None else None)
            await self.graph.call(lambda c: self._drive(c).items.by_drive_item_id(item["id"])
                                  .delete(request_configuration=config), path)
            await self._remove_emptied(path.rpartition("/")[0])

        self.graph.run(delete())

    # --- writing ------------------------------------------------------------------------

    def move(self, old: str, new: str, expect: SourceEntry) -> SourceEntry:
        """A PATCH (moving); the folder the move left empty goes then, and its parents while
        empty (folders)."""
        check_path(old)
        check_path(new, for_write=True)
        moved = self.graph.run(self._move(old, new, expect))
        self.graph.run(self._remove_emptied(old.rpartition("/")[0]))
        return moved

    def write(self, path: str, data: ByteStream, size: int,
              expect: SourceEntry | Absent | None = None) -> SourceEntry:
        """Returns the version from Graph's answer: Office files are rewritten on upload."""
        check_path(path, for_write=True)
        self.graph.run(self._discard(path))
        absent = isinstance(expect, Absent)
        etag = (None if isinstance(expect, Absent)
                else self.graph.run(self._expected_etag(path, expect)))
        try:
            if size == 0:  # an upload session cannot take 0 bytes
                item = self.graph.run(self.graph.json(
                    lambda c: self._put_empty(c, path, etag, absent), path))
                return delta.entry_of(path, item)
            url = self.graph.run(self._upload_session(path, etag, absent))
            try:
                item = send_chunks(self.graph, path, url, data, size)
            except BaseException:
                with contextlib.suppress(Exception):  # nothing is committed; free the session
                    self.graph.run(self.graph.fetch("DELETE", url, path))
                raise
        except NameConflict as exc:
            if absent:
                raise errors.ChangedAtSource("a file was created at the source meanwhile",
                                             path) from exc
            raise
        return delta.entry_of(path, item)

    async def _discard(self, path: str) -> None:
        self.listed.discard(path)  # on the loop, where the listings live

    async def _expected_etag(self, path: str, expect: SourceEntry | None) -> str | None:
        """Check `expect` against the item now; its eTag, for Graph to check again at commit."""
        if expect is None:
            return None
        try:
            item = await self._file(path)
        except errors.NotFound:  # deleted, or a folder now: not the version expected either
            item = None
        check_expected(path, None if item is None else delta.entry_of(path, item), expect)
        assert item is not None  # check_expected raised: a version was expected, none is there
        return item["eTag"]

    def _put_empty(self, client, path: str, etag: str | None, absent: bool):
        request = self._by_path(client, path).content.to_put_request_information(
            b"", if_match(etag))
        if absent:  # a simple upload takes its conflict behaviour as a query parameter
            request.url_template = request.url_template.split("{?")[0] + \
                "{?%40microsoft.graph.conflictBehavior}"
            request.query_parameters["%40microsoft.graph.conflictBehavior"] = "fail"
        return request

    async def _upload_session(self, path: str, etag: str | None, absent: bool) -> str:
        from msgraph.generated.drives.item.items.item.create_upload_session. \
                            create_upload_session_post_request_body import (
            CreateUploadSessionPostRequestBody,
        )
        from msgraph.generated.models.drive_item_uploadable_properties import (
            DriveItemUploadableProperties,
        )

        behavior = "fail" if absent else "replace"
        body = CreateUploadSessionPostRequestBody(item=DriveItemUploadableProperties(
            additional_data={"@microsoft.graph.conflictBehavior": behavior}))
        session = await self.graph.call(lambda c: self._by_path(c, path).create_upload_session
                                        .post(body, request_configuration=if_match(etag)), path)
        return session.upload_url

    # --- owners -------------------------------------------------------------------------

    def owners(self, paths: Iterable[str]) -> dict[str, str | None]:
        """createdBy (else lastModifiedBy) email: from the last listing, else looked up (None
        for a file gone since; any other failure is raised: files nobody could ask about
        never go to the connector's default owner). After a listing that read the index, a
        path it does not name is left out: a file it rebuilt unchanged from its index record,
        whose owner is the record's (the scan's own fallback), never a request per file."""
        paths = list(dict.fromkeys(paths))
        known = self._owners  # each given once (a scan asks once a path): not kept till next run
        out = {p: known.pop(p) for p in paths if p in known}
        if not known:
            self._owners = {}  # an emptied dict keeps its table: a library's worth
        if self._from_index:
            return out
        if missing := [p for p in paths if p not in out]:
            out.update(self.graph.run(self._look_up_owners(missing)))
        return {p: out[p] for p in paths}

    async def _look_up_owners(self, paths: Sequence[str]) -> dict[str, str | None]:
        async def one(path: str) -> str | None:
            try:
                return delta.owner_email(await self._file(path))
            except errors.NotFound:
                return None

        return dict(zip(paths, await asyncio.gather(*map(one, paths)), strict=True))

    def close(self) -> None:
        self.graph.close()
