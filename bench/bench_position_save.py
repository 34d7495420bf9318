"""Where a SharePoint first sync's memory goes in the source and the position's save, measured
in-process with tracemalloc (docs/PERFORMANCE.md §26).

    python bench/bench_position_save.py [files, default 20000]

Graph-shaped delta pages of `files` files (folders of 100, 200 items a page) are applied as the
source does (`delta.apply`), listed (`DeltaListing.listed`, chunks dropped as the scanner
does), the position made (`position`, `folders`) and saved into the machine's Redis
(`DeltaPositions.save`; a namespace of its own, removed after). Prints, after each step, the
bytes a file held and the step's peak.
"""
from __future__ import annotations

import asyncio
import secrets
import sys
import time
import tracemalloc

from common import ROOT  # noqa: F401  (puts the repository on sys.path)

from shared.sources.sharepoint import delta
from shared.sources.sharepoint.delta_listing import DeltaListing
from shared.store.connection import connect
from shared.store.store import Store
from shared.sync.model import DeltaCursor
from tests.fixtures.stack import REDIS_URL

FILES = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
PAGE = 200  # items a delta page (Graph's)


def gid(n: int) -> str:
    """An id shaped as Graph gives SharePoint's ("01" and 32 characters)."""
    return "01" + f"{n:032d}".replace("0", "A")


def delta_pages(files: int) -> list[list[dict]]:
    """A library's delta pages: the root, folders of 100 files, the files."""
    items: list[dict] = [{"id": gid(0), "root": {}, "name": "root"}]
    items += [{"id": gid(1 + f), "name": f"folder {f:04d}", "folder": {"childCount": 100},
               "parentReference": {"id": gid(0)}} for f in range(files // 100 + 1)]
    items += [{"id": gid(100_000 + i), "name": f"document number {i:06d}.docx",
               "size": 4096 + i, "lastModifiedDateTime": "2026-11-01T10:00:00Z",
               "cTag": f"c:{{{i:08X}-AAAA}},1",
               "file": {"hashes": {"quickXorHash": "aGVsbG8gd29ybGQhISEhISEhISEhISE="}},
               "createdBy": {"user": {"email": f"user{i % 40}@contoso.com"}},
               "parentReference": {"id": gid(1 + i // 100)}} for i in range(files)]
    return [items[i:i + PAGE] for i in range(0, len(items), PAGE)]


class Marks:
    """Bytes a file held after each step, and the step's peak (tracemalloc)."""

    def __init__(self, files: int) -> None:
        self.files = files
        tracemalloc.start()
        self.base = tracemalloc.get_traced_memory()[0]

    def __call__(self, step: str) -> None:
        now, peak = tracemalloc.get_traced_memory()
        print(f"{step:32s} held {(now - self.base) / self.files:6.0f} B a file, "
              f"peak {(peak - self.base) / self.files:6.0f}")
        tracemalloc.reset_peak()


async def main() -> None:
    st = Store(connect(REDIS_URL, "single"), "m" + secrets.token_hex(4))
    pages = delta_pages(FILES)
    mark = Marks(FILES)
    try:
        items: dict[str, dict] = {}
        gone: set[str] = set()
        for page in pages:
            delta.apply(items, page, gone)
        mark("enumerated (the items)")
        listing = DeltaListing(items, gone, {})
        mark("DeltaListing (the paths)")
        listed = sum(len(part) for part in listing.listed())
        mark(f"listed ({listed} files)")
        new = DeltaCursor("https://graph/delta?token=d", listing.position(), time.time(),
                          vouched=listing.vouched, folders=listing.folders())
        mark("the position to save")
        await st.delta_positions.save("c1", await st.delta_positions.cursor("c1"), new, {})
        mark("saved")
    finally:
        await st.delta_positions.forget("c1")


if __name__ == "__main__":
    asyncio.run(main())
