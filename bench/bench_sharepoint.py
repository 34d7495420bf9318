"""SharePoint: Graph requests per run, counted at the emulator (issue 9, target 7).

    python bench/bench_sharepoint.py [--sizes 500,5000] [--changes 5]

For libraries of each size (files of 1 KiB, folders of 100) served by the HTTPS Graph emulator
(tests/graph, 50 items a delta page), counts the requests of: the initial sync (a full
enumeration), a no-change run, and a run after `--changes` changes (edits, new files, a
deletion). Goal: an incremental run's requests follow the changes (delta), not the library's
size; the full listing is the reference beside it. After the runs, what the connector keeps in
Redis per file (`MEMORY USAGE` of its index, its delta position's items and its owner labels,
over the files indexed): target 4, ≤ 200 B; the scanner's CPU seconds for a no-change run
(/proc/<pid>/stat), right after the first sync and once the position leaves files to the index,
that run's wall time, and the scanner's peak resident memory (VmHWM): with the full listings
so far, and in that later run alone, by a scanner started afresh before it (what an
incremental run holds: the folders and the changes, not the library).
"""
from __future__ import annotations

import argparse
from collections import Counter

from common import Servers, cpu_s, fresh_scanner, resync, table, vmhwm_mib

KIB = 1024


def sp_connector(api, graph, site, share: str) -> str:
    from tests.e2e.sharepoint_helpers import new_sp_connector
    return new_sp_connector(api, graph, site, "Documents", share)["id"]


def change(graph, drive, size: int, n: int, round_: int) -> None:
    """n changes: about 2/5 edits, 2/5 new files, the rest deletions."""
    for i in range(n):
        kind = i % 5
        if kind in (0, 1):
            graph.put_file(drive, f"d0000/f{i:06d}.txt", f"edit {round_} {i}".encode() * 50)
        elif kind in (2, 3):
            graph.put_file(drive, f"new/r{round_}-{i}.txt", b"new" * 300)
        else:
            last = size - 1 - i  # from the end of the library: never one edited above
            graph.delete(drive, f"d{last // 100:04d}/f{last:06d}.txt")


def graph_requests(graph, before: Counter) -> Counter:
    return Counter(graph.counts()) - before


LISTING = ("delta", "site_by_path", "site_drives")


def summary(c: Counter) -> tuple[int, int, int, int, int]:
    """(all Graph API requests, listing requests (site, drive, delta pages), per-file requests
    (an item's download URL, a deletion's re-check), downloads, token requests)."""
    api = sum(v for k, v in c.items() if k not in ("download", "token", "openid"))
    listing = sum(c[k] for k in LISTING)
    return api, listing, api - listing, c["download"], c["token"] + c["openid"]


def redis_bytes(ns: str, cid: str) -> tuple[float, float, float]:
    """Bytes per indexed file of the connector's index, delta position items and labels."""
    import redis

    from tests.fixtures.stack import REDIS_URL
    r = redis.Redis.from_url(REDIS_URL)
    files = r.hlen(f"{ns}:index:{cid}")
    return tuple((r.memory_usage(f"{ns}:{family}:{cid}", samples=0) or 0) / files
                 for family in ("index", "items", "labels"))  # type: ignore[return-value]


def scanner_pid(stack) -> int:
    return next(p.pid for k, p in stack.procs.items()
                if k.startswith("scanner") and p.poll() is None)


def scanner_cpu_s(stack) -> float:
    return cpu_s(scanner_pid(stack))


def scanner_peak_mib(stack) -> float:
    """The scanner's peak resident memory so far (VmHWM)."""
    return vmhwm_mib(scanner_pid(stack))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="500,5000")
    ap.add_argument("--changes", type=int, default=5)
    args = ap.parse_args()
    from tests.fixtures.stack import wait_run
    from tests.graph.server import GraphHandle
    srv = Servers("bench-sharepoint-")
    graph = stack = None
    rows, memory = [], []
    try:
        (srv.work / "graph").mkdir()
        graph = GraphHandle(srv.work / "graph").start()
        stack = srv.stack(2, graph=graph)
        api = stack.api()
        for size in map(int, args.sizes.split(",")):
            site = graph.add_site("contoso.sharepoint.com", f"/sites/bench-{size}")
            drive = graph.add_library(site, "Documents")
            for i in range(size):
                graph.put_file(drive, f"d{i // 100:04d}/f{i:06d}.txt", bytes([i % 251]) * KIB)
            before = Counter(graph.counts())
            view = wait_run(api, sp_connector(api, graph, site, f"sp-{size}"), timeout=3600)
            full = graph_requests(graph, before)
            cid = view["id"]
            before, cpu = Counter(graph.counts()), scanner_cpu_s(stack)
            _, _ = resync(api, cid)
            idle = graph_requests(graph, before)
            idle_cpu = scanner_cpu_s(stack) - cpu
            change(graph, drive, size, args.changes, 1)
            before = Counter(graph.counts())
            _, view = resync(api, cid)
            inc = graph_requests(graph, before)
            moved = view["status"]["progress"]
            _, _ = resync(api, cid)  # the position saved once the changes are indexed
            full_peak = scanner_peak_mib(stack)  # with the initial sync's full listing
            up = vmhwm_mib(fresh_scanner(stack))  # Python keeps what full listings freed
            cpu = scanner_cpu_s(stack)
            took, _ = resync(api, cid)  # no change, from a position leaving files to the index
            peak = scanner_peak_mib(stack)
            memory.append([f"{size:,}", *(f"{b:.0f}" for b in redis_bytes(stack.ns, cid)),
                           f"{idle_cpu:.2f}", f"{scanner_cpu_s(stack) - cpu:.2f}",
                           f"{took:.2f}", f"{full_peak:.0f}", f"{up:.0f}",
                           f"{peak:.0f} (+{peak - up:.1f})"])
            print(f"{size}: full {dict(full)}\n  no change {dict(idle)}\n  "
                  f"{args.changes} changes {dict(inc)} -> {moved}", flush=True)
            for label, c in (("initial sync (full listing)", full), ("no change", idle),
                             (f"{args.changes} changes", inc)):
                rows.append([f"{size:,}", label, *summary(c)])
        print(f"\nGraph requests counted at the emulator ({graph.page_size} items a delta page)")
        print(table(["library files", "run", "Graph API requests", "listing (site, drive, delta)",
                     "per changed file (item, re-check)", "downloads", "token requests"], rows))
        print("\nRedis bytes per indexed file (MEMORY USAGE SAMPLES 0 / files indexed)")
        print(table(["library files", "index", "delta position items", "owner labels",
                     "scanner CPU s, no-change run after the first sync",
                     "scanner CPU s, a later no-change run", "its wall s",
                     "scanner peak RSS MiB, with the full listings so far",
                     "a fresh scanner's RSS MiB", "its peak in the later no-change run MiB"],
                    memory))
    finally:
        if stack:
            stack.stop()
        if graph:
            graph.stop()
        srv.stop()


if __name__ == "__main__":
    main()
