"""The drive root's delta query followed (`SharePointSource.walk` lists from it): the changes
since a saved position onto its items, or, without one (or one Graph no longer takes), a full
enumeration of the library. A full enumeration keeps each page as it comes, with the link that
follows it (`DeltaCursor.enumeration`), and one a killed scan left goes on from its last page
kept instead of the library's first (a library of a million items is 5,000 pages of a
tenant's throttled requests), unless Graph no longer takes that link: then from the start.

Items are delta.py's compact dicts. May import: `shared.errors`, `shared.sync.model`, and the
package's `delta`, `graph`, `graph_errors`.
"""
from __future__ import annotations

import logging
from typing import Any

from shared import errors
from shared.sources.sharepoint import delta
from shared.sources.sharepoint.graph import GraphSession
from shared.sources.sharepoint.graph_errors import BadRequest, ResyncRequired
from shared.sync.model import DeltaCursor, EnumerationProgress, folder_ids

log = logging.getLogger(__name__)


class SharePointDeltaFeed:
    """Mixed into SharePointSource, which defines `graph`, `drive_id` and `_drive`."""

    graph: GraphSession
    drive_id: str

    def _drive(self, client: Any) -> Any:
        raise NotImplementedError

    def _root_delta(self, client: Any, link: str | None) -> Any:
        builder = self._drive(client).items.by_drive_item_id("root").delta
        return builder.with_url(link) if link else builder

    async def _delta(self, cursor: DeltaCursor | None) -> tuple[
            dict[str, dict], set[str], dict[str, str], str, bool]:
        """Items after every change since `cursor` (the position's, not yet the files it left
        to the index), the ids the changes deleted, the position's folders by path before them
        (empty: a full enumeration), the new deltaLink, and whether the saved position had to
        be given up for a full enumeration."""
        link = cursor.link if cursor is not None else None
        # a copy: the caller's cursor stays as is
        items = dict(cursor.items) if cursor is not None and link else {}
        gone: set[str] = set()
        try:
            if link:
                if not delta.has_root(items):  # changes alone would not make a tree
                    raise ResyncRequired("the saved position has no items to apply changes to")
                if delta.is_legacy(items):  # folders not told from packages: once
                    raise ResyncRequired("the saved position predates folders in listings")
                before = folder_ids(items)
                return items, gone, before, await self._follow(link, items, gone), False
        except ResyncRequired as exc:
            log.info("delta position of drive %s unusable (%s): full enumeration",
                     self.drive_id, exc)
        items, gone = {}, set()
        link = await self._enumerate(cursor.enumeration if cursor is not None else None,
                                     items, gone)
        if not delta.has_root(items):  # an empty listing would read as "delete everything"
            raise errors.SyncError("the library's delta listing has no root folder", "")
        return items, gone, {}, link, cursor is not None and cursor.link is not None

    async def _enumerate(self, progress: EnumerationProgress | None, items: dict[str, dict],
                         gone: set[str]) -> str:
        """Every item of the library into `items`; returns the deltaLink. Each page is kept
        as it comes (`progress`), and an enumeration a killed scan left goes on from its last
        page kept (a library of a million items is 5,000 pages of a tenant's throttled
        requests), unless Graph no longer takes its link: then from the start."""
        saved = await progress.resume(self.drive_id) if progress is not None else None
        if saved is not None:
            link, kept = saved
            log.info("drive %s: going on with a full enumeration from its %d items kept",
                     self.drive_id, len(kept))
            items.update(kept)
            try:
                return await self._follow(link, items, gone, progress)
            except (ResyncRequired, BadRequest) as exc:
                log.info("drive %s: the enumeration kept cannot go on (%s): from the start",
                         self.drive_id, exc)
                items.clear()
                gone.clear()
        return await self._follow(None, items, gone, progress, first=True)

    async def _follow(self, link: str | None, items: dict[str, dict], gone: set[str],
                      progress: EnumerationProgress | None = None, first: bool = False) -> str:
        """Apply every page from `link` (None: from the start); returns the new deltaLink.
        `progress`: each page kept there with the link that follows it (`first`: the first
        page of an enumeration)."""
        while True:
            def request(client: Any, at: str | None = link) -> Any:
                return self._root_delta(client, at).to_get_request_information()

            page = await self.graph.json(request, "")
            value = page.get("value") or []
            delta.apply(items, value, gone)
            following = page.get("@odata.nextLink") or page.get("@odata.deltaLink")
            if not following:
                raise errors.Transient("delta page with neither nextLink nor deltaLink", "")
            if progress is not None:
                ids = {item["id"] for item in value}
                await progress.keep(self.drive_id, following,
                                    {i: items[i] for i in ids if i in items},
                                    [i for i in ids if i not in items], first)
                first = False
            if not page.get("@odata.nextLink"):
                return following
            link = following
