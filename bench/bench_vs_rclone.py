"""Initial sync, ours vs rclone (Debian's 1.60) on the same Samba source (signing required) and
the same S3 sink in one run (issue 9, targets 1 and 2).

    python bench/bench_vs_rclone.py [--large-mib 1024] [--small 5000:4,2000:100] [--workers 2]
                                    [--only large|small]

Large file: `smbclient get` to /dev/null (the SMB read limit here), `rclone copy` at its
defaults, and ours; goal: ours at least rclone's throughput and within 2x of smbclient's.
Small files (count:KiB each): `rclone copy` at its defaults (--transfers 4 --checkers 8) and
tuned to our parallelism (workers x SCAIDRIVE_TRANSFER_CONCURRENCY), and ours; goal: files/s at
least rclone's in both. Ours = from creating the connector to the run's end, through the API.
"""
from __future__ import annotations

import argparse
import io
import os
import time

from common import (
    MIB,
    Servers,
    first_sync,
    make_files,
    make_large,
    rclone,
    smbclient_get,
    table,
    workers_peak_mib,
)

PART = 8 * MIB  # SCAIDRIVE_PART_SIZE_MB as the benchmark stacks run it
CONCURRENCY = 8  # SCAIDRIVE_TRANSFER_CONCURRENCY's default: jobs in flight per worker


def smb_read_only(srv: Servers, rel: str) -> float:
    """Our SMB reader alone (signed, pipelined), to nowhere: our side of the SMB read limit."""
    from shared.sources.smb.source import SmbSource
    samba = srv.samba
    src = SmbSource("127.0.0.1", samba.share, port=samba.port, username=samba.username,
                    password=samba.password, encryption="off")
    try:
        start = time.perf_counter()
        with src.open_read(rel) as reader:
            while reader.read(PART):
                pass
        return time.perf_counter() - start
    finally:
        src.close()


def sink_only(srv: Servers, mib: int) -> float:
    """The S3 sink alone: minio's multipart put (our part size and parallelism) into moto."""
    block = os.urandom(PART)

    class Repeat(io.RawIOBase):
        left = mib * MIB

        def read(self, n: int = -1) -> bytes:
            n = min(self.left, PART if n is None or n < 0 else n)
            self.left -= n
            return block[:n]

    client = srv.s3.client()
    client.make_bucket("sink-only")
    start = time.perf_counter()
    client.put_object("sink-only", "one.bin", Repeat(), mib * MIB, part_size=PART,
                      num_parallel_uploads=3)
    return time.perf_counter() - start


def large_case(srv: Servers, stack, mib: int) -> tuple[list, list]:
    make_large(srv.share, "large/one.bin", mib * MIB)
    smb = smbclient_get(srv, "large/one.bin")
    ref, _ = rclone(srv, "copy", folder="large", bucket="rclone-large")
    ours, _, _ = first_sync(stack.api(), srv, "ours-large", "large")
    rss = workers_peak_mib(stack)
    read, sink = smb_read_only(srv, "large/one.bin"), sink_only(srv, mib)
    print(f"large: smbclient {smb:.2f} s, rclone {ref:.2f} s, ours {ours:.2f} s, "
          f"worker peak {rss:.0f} MiB; our SMB read alone {read:.2f} s, S3 sink alone "
          f"{sink:.2f} s", flush=True)
    speed = [f"{mib / t:.1f} MiB/s" for t in (smb, ref, ours)]
    parts = [f"{mib / t:.1f} MiB/s" for t in (read, sink)]
    return ([f"one {mib} MiB file", *speed, round(ref / ours, 2), round(smb / ours, 2)],
            [*parts, round(smb / read, 2), round(rss)])


def small_case(srv: Servers, stack, count: int, kib: int, parallel: int) -> list:
    folder = f"small{count}x{kib}"
    make_files(srv.share, folder, count, kib * 1024, per_dir=500)
    default, _ = rclone(srv, "copy", folder=folder, bucket=f"rc-default-{count}-{kib}")
    tuned, _ = rclone(srv, "copy", "--transfers", str(parallel), "--checkers", str(parallel),
                      folder=folder, bucket=f"rc-tuned-{count}-{kib}")
    ours, _, _ = first_sync(stack.api(), srv, f"ours-{count}-{kib}", folder)
    print(f"{folder}: rclone {default:.2f} s, tuned {tuned:.2f} s, ours {ours:.2f} s", flush=True)
    return [f"{count:,} x {kib} KiB", f"{count / default:.0f}", f"{count / tuned:.0f}",
            f"{count / ours:.0f}", round(default / ours, 2), round(tuned / ours, 2)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--large-mib", type=int, default=1024)
    ap.add_argument("--small", default="5000:4,2000:100")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=("large", "small"))
    args = ap.parse_args()
    srv = Servers("bench-rclone-")
    stack = srv.stack(args.workers)
    try:
        if args.only != "small":
            row, parts = large_case(srv, stack, args.large_mib)
            print("\n" + table(["case", "smbclient get", "rclone copy", "ours",
                                "ours / rclone (>= 1)", "ours / smbclient (>= 0.5)"], [row]))
            print(table(["our SMB read alone", "S3 sink alone (moto)",
                         "our SMB read / smbclient (>= 0.5)", "worker peak RSS MiB"], [parts]))
        if args.only != "large":
            parallel = args.workers * CONCURRENCY
            rows = [small_case(srv, stack, *map(int, spec.split(":")), parallel)
                    for spec in args.small.split(",")]
            print("\n" + table(["case", "rclone files/s (defaults)",
                                f"rclone files/s (--transfers {parallel} --checkers {parallel})",
                                "ours files/s", "ours / rclone defaults (>= 1)",
                                "ours / rclone tuned (>= 1)"], rows))
        print(f"(speed ratios: above 1 = ours faster; {args.workers} transfer workers x "
              f"{CONCURRENCY} jobs; peak RSS of the workers {workers_peak_mib(stack):.0f} MiB)")
    finally:
        stack.stop()
        srv.stop()


if __name__ == "__main__":
    main()
