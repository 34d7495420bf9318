"""Horizontal scaling: the same initial sync with 1, 2 and 4 transfer worker processes, on the
same Samba source and S3 sink, with `rclone copy` of that source as the reference.

    python bench/bench_scaling.py [--files 2000] [--kib-each 256] [--workers 1,2,4]

Prints, per worker count: the run's time, the speed-up over 1 worker, and the ratio to rclone.
On a machine with few cores the pipeline is CPU-bound and speed-up flattens at the core count.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_vs_rclone import ours, rclone_copy  # noqa: E402
from tests.e2e.helpers import write_random  # noqa: E402
from tests.fixtures.s3 import S3Server  # noqa: E402
from tests.fixtures.samba import SambaServer  # noqa: E402
from tests.fixtures.stack import Stack  # noqa: E402

KIB = 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--kib-each", type=int, default=256)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    samba, s3 = SambaServer(), S3Server(work / "s3.log")
    samba.start()
    try:
        for i in range(args.files):
            write_random(samba.share_dir, f"src/d{i % 40}/f{i:05d}.bin", args.kib_each * KIB)
        reference = rclone_copy(samba, s3, "src", "rclone-src")
        rows = []
        for n in counts:
            stack = Stack(s3, work, SCAIDRIVE_LOG_LEVEL="INFO").start(n)
            try:
                wall, run = ours(stack, samba, "src", f"workers-{n}")
            finally:
                stack.stop()
            rows.append((n, wall, run))
        base = rows[0][1]
        print(f"\n{args.files} files of {args.kib_each} KiB; rclone copy: {reference:.2f} s")
        print(f"{'workers':>8}{'ours s':>10}{'(run s)':>10}{'speed-up':>10}{'vs rclone':>11}")
        for n, wall, run in rows:
            print(f"{n:>8}{wall:>10.2f}{run:>10.2f}{base / wall:>10.2f}{wall / reference:>11.2f}")
        print("(speed-up = time with 1 worker / time; vs rclone = our time / rclone's)")
    finally:
        s3.stop()
        samba.stop()


if __name__ == "__main__":
    main()
