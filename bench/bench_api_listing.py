"""`GET /connectors` with thousands of connectors (issue 18, its listing target): p50 and p95 of
a page of 100 (`?limit=100`, first page and a page from the middle), filtered by state, and the
unpaged listing for comparison.

    python bench/bench_api_listing.py [--connectors 2000] [--requests 40]

The connectors' records, statuses and runs are written straight into a private Redis through
the store (no broker queues: this measures the API's reads, not the pipeline), then the API
runs as its own process, as `scaidrive-connectors up` starts it. Goal: p50 <= 50 ms a page.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from common import own_redis, table


async def fill(redis_url: str, ns: str, n: int) -> None:
    from shared.config.connector_model import Connector
    from shared.store.store import Store
    store = Store.connect(redis_url, ns)
    try:
        for i in range(n):
            c = Connector(name=f"share-{i:05d}", target_share=f"share-{i:05d}", schedule="1h",
                          server=f"smb://files{i % 40}.example.com/dept{i}", username="svc")
            await store.save_connector(c)
            await store.begin_run(c.id, f"run-{i}", "schedule")
            await store.set_status(c.id, paused=int(i % 10 == 0), next_due=time.time() + 3600)
    finally:
        await store.close()


def timed(api, path: str, params: dict, n: int) -> tuple[list[float], int]:
    times, items = [], 0
    for _ in range(n):
        start = time.perf_counter()
        resp = api.get(path, params=params)
        times.append((time.perf_counter() - start) * 1000)
        assert resp.status_code == 200, resp.text
        items = len(resp.json())
    return times, items


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connectors", type=int, default=2000)
    ap.add_argument("--requests", type=int, default=40)
    args = ap.parse_args()
    import os
    work = Path(tempfile.mkdtemp(prefix="bench-listing-"))
    redis = own_redis(work)
    from tests.fixtures.stack import Stack
    s3 = SimpleNamespace(endpoint="http://127.0.0.1:9", access_key="x", secret_key="y")
    stack = Stack(s3, work, SCAIDRIVE_LOG_LEVEL="INFO")
    try:
        asyncio.run(fill(os.environ["TEST_REDIS_URL"], stack.ns, args.connectors))
        stack.start_api()
        api = stack.api()
        first = api.get("/connectors", params={"limit": 100})
        middle = sorted(c["id"] for c in api.get("/connectors").json())[args.connectors // 2]
        assert first.headers.get("x-next-cursor")
        rows = []
        for label, params in (("limit=100, first page", {"limit": 100}),
                              ("limit=100, from the middle", {"limit": 100, "cursor": middle}),
                              ("limit=100, state=paused", {"limit": 100, "state": "paused"}),
                              ("unpaged (all)", {})):
            times, items = timed(api, "/connectors", params, args.requests)
            rows.append([label, items, round(statistics.median(times), 1),
                         round(sorted(times)[int(len(times) * 0.95) - 1], 1)])
        print(table(["request", "connectors returned", "p50 ms", "p95 ms"], rows))
    finally:
        stack.stop()
        redis.terminate()


if __name__ == "__main__":
    main()
