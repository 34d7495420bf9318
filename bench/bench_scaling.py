"""Horizontal scaling: the same initial sync with 1, 2 and 4 transfer worker processes, on the
same Samba source and S3 sink, with `rclone copy` of that source as the reference.

    python bench/bench_scaling.py [--files 2000] [--kib-each 256] [--workers 1,2,4]

Prints, per worker count: the run's time, the speed-up over 1 worker, and the ratio to rclone.
On a machine with few cores the pipeline is CPU-bound and speed-up flattens at the core count.
"""
from __future__ import annotations

import argparse

from common import Servers, first_sync, make_files, rclone, table

KIB = 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--kib-each", type=int, default=256)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    srv = Servers("bench-scaling-")
    try:
        make_files(srv.share, "src", args.files, args.kib_each * KIB, per_dir=50)
        reference, _ = rclone(srv, "copy", folder="src", bucket="rclone-src")
        rows = []
        for n in counts:
            stack = srv.stack(n)
            try:
                wall, _, view = first_sync(stack.api(), srv, f"workers-{n}", "src")
            finally:
                stack.stop()
            rows.append((n, wall, view["status"]["last_duration_s"]))
        base = rows[0][1]
        print(f"\n{args.files} files of {args.kib_each} KiB; rclone copy: {reference:.2f} s")
        print(table(["workers", "ours s", "(run s)", "speed-up", "vs rclone (time ratio)"],
                    [[n, round(wall, 2), round(run, 2), round(base / wall, 2),
                      round(wall / reference, 2)] for n, wall, run in rows]))
        print("(speed-up = time with 1 worker / time; vs rclone = our time / rclone's)")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
