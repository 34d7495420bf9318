"""Memory (issue 9, target 6): a transfer worker's peak RSS while moving one huge file, and the
scanner's peak RSS for trees of different shapes.

    python bench/bench_memory.py [--large-mib 4096] [--files 20000] [--only large|scanner]
                                 [--mode one_way|two_way] [--trees small,deep,wide]

Large: one file through 2 fresh transfer workers; the highest VmHWM among them (goal < 150 MiB).
Scanner: a fresh scanner process before each run, so its VmHWM is that run's: an idle scanner,
a small tree (folders of 10), a deep tree of `--files` files (folders of 10, three levels), and
a wide tree of as many files in one folder; each for the initial sync and a no-change re-sync.
Goal: memory grows with folder width, not with tree size (deep ~ small, wide above both).
`--mode two_way`: the scanner's no-change re-sync of each tree by a two-way connector (filled by
a one-way first sync, then made two-way: the re-sync compares the listing, the index and every
object's etag).
"""
from __future__ import annotations

import argparse
import os
import time

from common import (
    MIB,
    Servers,
    first_sync,
    fresh_scanner,
    make_files,
    make_large,
    resync,
    table,
    vmhwm_mib,
    workers_peak_mib,
)


def make_deep(root, folder: str, count: int) -> None:
    """`count` empty files, 10 a folder, three folder levels down (d123/e4/f5/f123456.bin)."""
    for i in range(count):
        path = root / folder / f"d{i // 1000:03d}/e{i // 100 % 10}/f{i // 10 % 10}/f{i:06d}.bin"
        if i % 10 == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def writable(root) -> None:
    """A two-way connector's account must write into its folder (the save-time check)."""
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, 0o777)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o666)


def scanner_case(srv: Servers, stack, label: str, folder: str, mode: str) -> list:
    if mode == "two_way":
        return two_way_case(srv, stack, label, folder)
    pid = fresh_scanner(stack)
    initial, cid, _ = first_sync(stack.api(), srv, f"mem-{folder}", folder)
    first = vmhwm_mib(pid)
    pid = fresh_scanner(stack)
    again, _ = resync(stack.api(), cid)
    second = vmhwm_mib(pid)
    print(f"{label}: initial {initial:.1f} s {first:.0f} MiB, re-sync {again:.1f} s "
          f"{second:.0f} MiB", flush=True)
    return [label, round(first, 1), round(second, 1)]


def two_way_case(srv: Servers, stack, label: str, folder: str) -> list:
    """Both sides and the index filled by a one-way first sync (a two-way first sync of a
    big tree spends its time in the transfers, not the scan), then the connector made two-way:
    its no-change re-sync decides over the three whole trees (listing, index, etags)."""
    writable(srv.share / folder)
    api = stack.api()
    initial, cid, _ = first_sync(api, srv, f"mem-{folder}", folder)
    resp = api.patch(f"/connectors/{cid}", json={"sync_mode": "two_way",
                                                 "admin_emails": ["ops@example.com"]})
    assert resp.status_code == 200, resp.text
    pid = fresh_scanner(stack)
    again, view = resync(api, cid)
    progress = view["status"]["progress"]
    assert progress["files_transferred"] == progress["files_moved"] == 0, progress
    second = vmhwm_mib(pid)
    print(f"{label}: one-way fill {initial:.1f} s, two-way re-sync {again:.1f} s "
          f"{second:.0f} MiB", flush=True)
    return [label, "-", round(second, 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--large-mib", type=int, default=4096)
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--only", choices=("large", "scanner"))
    ap.add_argument("--mode", choices=("one_way", "two_way"), default="one_way")
    ap.add_argument("--trees", default="small,deep,wide", help="which scanner trees")
    args = ap.parse_args()
    srv = Servers("bench-memory-")
    stack = srv.stack(2)
    try:
        if args.only != "scanner":
            make_large(srv.share, "large/huge.bin", args.large_mib * MIB)
            took, _, _ = first_sync(stack.api(), srv, "mem-large", "large")
            peak = workers_peak_mib(stack)
            print(f"\none {args.large_mib} MiB file in {took:.1f} s "
                  f"({args.large_mib / took:.0f} MiB/s)")
            print(table(["file", "worker peak RSS (VmHWM) MiB", "goal"],
                        [[f"{args.large_mib} MiB", round(peak, 1), "< 150"]]), flush=True)
        if args.only != "large":
            idle = vmhwm_mib(fresh_scanner(stack))
            time.sleep(2)
            trees = args.trees.split(",")
            cases = {"small": ("1,000 files, folders of 10", lambda: make_deep(srv.share, "small",
                                                                              1000)),
                     "deep": (f"{args.files:,} files, folders of 10 (deep)",
                              lambda: make_deep(srv.share, "deep", args.files)),
                     "wide": (f"{args.files:,} files in one folder (wide)",
                              lambda: make_files(srv.share, "wide", args.files, 0))}
            rows = [["idle scanner", round(idle, 1), "-"]]
            for tree in trees:
                label, make = cases[tree]
                make()
                rows.append(scanner_case(srv, stack, label, tree, args.mode))
            print(f"\n{args.mode}:\n" + table(["tree", "scanner VmHWM MiB, initial sync",
                                "scanner VmHWM MiB, no-change re-sync"], rows))
    finally:
        stack.stop()
        srv.stop()


if __name__ == "__main__":
    main()
