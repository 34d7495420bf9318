"""What keeping a SharePoint full enumeration page by page costs (docs/PERFORMANCE.md §26).

    python bench/bench_enumeration_kept.py

Keeps 100 delta pages of 200 Graph-shaped file items through `DeltaCursor.enumeration` (the
store's `KeptEnumeration`) from another thread's event loop, as the SharePoint source does while
the scan's loop serves Redis, in the machine's Redis (a namespace of its own, removed after);
prints µs of CPU and wall time per item, the time to read them back (a killed scan's resume),
and the bytes per item Redis holds while an enumeration is under way.
"""
from __future__ import annotations

import asyncio
import secrets
import time

from common import ROOT  # noqa: F401  (puts the repository on sys.path)

from shared.store.connection import connect
from shared.store.store import Store
from tests.fixtures.stack import REDIS_URL

PAGE, PAGES = 200, 100  # Graph's delta page; a library of 20,000 files
CID, DRIVE = "c1", "drive-1"


def page_items(page: int) -> dict[str, dict]:
    """A delta page of Graph-shaped file items (shared/sources/sharepoint/delta.py's form)."""
    return {f"01ABCDEFGHIJKLMNOPQRSTUVWXYZ{page:04d}{i:04d}": {
        "n": f"file {i}.docx", "p": "01" + "Q" * 32, "s": 4096 + i, "m": 1_764_000_000 * 10**9,
        "t": "aGVsbG8gd29ybGQhISEhISEhISEhISE=", "o": "alice@contoso.com"} for i in range(PAGE)}


def keep_all(kept, pages: list[dict[str, dict]]) -> tuple[float, float]:
    """Keep every page from a thread and event loop of its own, as the source does; returns
    (wall s, that thread's CPU s)."""
    async def go() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.thread_time()
        for n, items in enumerate(pages):
            await kept.keep(DRIVE, f"https://graph/delta?token={n}", items, [], first=n == 0)
        return time.perf_counter() - t0, time.thread_time() - c0
    return asyncio.run(go())


async def main() -> None:
    st = Store(connect(REDIS_URL, "single"), "b" + secrets.token_hex(4))
    try:
        kept = (await st.delta_positions.cursor(CID)).enumeration
        pages = [page_items(p) for p in range(PAGES)]
        n = PAGE * PAGES
        cpu0 = time.process_time()
        wall, thread_cpu = await asyncio.to_thread(keep_all, kept, pages)
        cpu = time.process_time() - cpu0
        print(f"{n} items kept: wall {wall / n * 1e6:.1f} µs an item, CPU {cpu / n * 1e6:.1f} µs "
              f"(the listing's thread {thread_cpu / n * 1e6:.1f} µs)")
        t0 = time.perf_counter()
        _, back = await kept.resume(DRIVE)
        print(f"read back (a killed scan's resume): {len(back)} items in "
              f"{time.perf_counter() - t0:.3f} s")
        mem = await st.r.memory_usage(st.key("enum_items", CID), samples=0)
        print(f"Redis while under way: {mem / n:.0f} B an item")
    finally:
        await st.delta_positions.forget(CID)


if __name__ == "__main__":
    asyncio.run(main())
