"""Memory (issue 9, target 6): a transfer worker's peak RSS while moving one huge file, and the
scanner's peak RSS for trees of different shapes.

    python bench/bench_memory.py [--large-mib 4096] [--files 20000] [--only large|scanner]
                                 [--mode one_way|two_way]

Large: one file through 2 fresh transfer workers; the highest VmHWM among them (goal < 150 MiB).
Scanner: a fresh scanner process before each run, so its VmHWM is that run's: an idle scanner,
a small tree (folders of 10), a deep tree of `--files` files (folders of 10, three levels), and
a wide tree of as many files in one folder; each for the initial sync and a no-change re-sync.
Goal: memory grows with folder width, not with tree size (deep ~ small, wide above both).
`--mode two_way`: the scanner cases with two-way connectors (the re-sync then also compares
ScaiDrive's side, every object's etag).
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
        writable(srv.share / folder)
    pid = fresh_scanner(stack)
    extra = {} if mode == "one_way" else {"sync_mode": mode, "admin_emails": ["ops@example.com"]}
    initial, cid, _ = first_sync(stack.api(), srv, f"mem-{folder}", folder, **extra)
    first = vmhwm_mib(pid)
    pid = fresh_scanner(stack)
    again, _ = resync(stack.api(), cid)
    second = vmhwm_mib(pid)
    print(f"{label}: initial {initial:.1f} s {first:.0f} MiB, re-sync {again:.1f} s "
          f"{second:.0f} MiB", flush=True)
    return [label, round(first, 1), round(second, 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--large-mib", type=int, default=4096)
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--only", choices=("large", "scanner"))
    ap.add_argument("--mode", choices=("one_way", "two_way"), default="one_way")
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
            make_deep(srv.share, "small", 1000)
            make_deep(srv.share, "deep", args.files)
            make_files(srv.share, "wide", args.files, 0)
            rows = [["idle scanner", round(idle, 1), "-"],
                    scanner_case(srv, stack, "1,000 files, folders of 10", "small", args.mode),
                    scanner_case(srv, stack, f"{args.files:,} files, folders of 10 (deep)",
                                 "deep", args.mode),
                    scanner_case(srv, stack, f"{args.files:,} files in one folder (wide)",
                                 "wide", args.mode)]
            print(f"\n{args.mode}:\n" + table(["tree", "scanner VmHWM MiB, initial sync",
                                "scanner VmHWM MiB, no-change re-sync"], rows))
    finally:
        stack.stop()
        srv.stop()


if __name__ == "__main__":
    main()
