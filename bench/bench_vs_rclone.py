"""Initial sync, ours vs `rclone copy` (Debian's rclone, default settings), on the same Samba
source and the same S3 sink in one run. Prints time ratios and the transfer workers' peak RSS.

    python bench/bench_vs_rclone.py [--small 2000] [--large-mib 1024] [--workers 2]

Goal (issue 2): ratio <= 1.0 on both cases, peak RSS < 150 MiB per worker on the large file.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.e2e.helpers import new_connector, write_random  # noqa: E402
from tests.fixtures.s3 import S3Server  # noqa: E402
from tests.fixtures.samba import SambaServer  # noqa: E402
from tests.fixtures.stack import Stack, wait_run  # noqa: E402

MIB = 1024 * 1024


def rclone_copy(samba, s3, folder: str, bucket: str) -> float:
    obscured = subprocess.run(["rclone", "obscure", samba.password], capture_output=True,
                              text=True, check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # breaks rclone's S3
    cmd = ["rclone", "copy", "--s3-provider", "Other", "--s3-endpoint", s3.endpoint,
           "--s3-access-key-id", s3.access_key, "--s3-secret-access-key", s3.secret_key,
           "--s3-region", "us-east-1", "--smb-host", "127.0.0.1", "--smb-port", str(samba.port),
           "--smb-user", samba.username, "--smb-pass", obscured,
           f":smb:{samba.share}/{folder}", f":s3:{bucket}"]
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    return time.perf_counter() - start


def ours(stack, samba, folder: str, bucket: str) -> tuple[float, float]:
    """Wall time from creating the connector to the run's end, and the run's own duration."""
    api = stack.api()
    start = time.perf_counter()
    cid = new_connector(api, samba, bucket, folder)["id"]
    view = wait_run(api, cid, timeout=3600)
    wall = time.perf_counter() - start
    assert view["status"]["run"]["outcome"] == "success", view["status"]
    return wall, view["status"]["last_duration_s"]


def peak_rss_mib(stack) -> float:
    peaks = []
    for label in stack.workers():
        status = Path(f"/proc/{stack.procs[label].pid}/status").read_text()
        hwm = [line for line in status.splitlines() if line.startswith("VmHWM")][0]
        peaks.append(int(hwm.split()[1]) / 1024)
    return max(peaks)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--large-mib", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    samba, s3 = SambaServer(), S3Server(work / "s3.log")
    samba.start()
    stack = Stack(s3, work, SCAIDRIVE_LOG_LEVEL="INFO").start(args.workers)
    rng = random.Random(7)
    try:
        for i in range(args.small):
            (samba.share_dir / "small").mkdir(exist_ok=True)
            (samba.share_dir / f"small/f{i:05d}.bin").write_bytes(
                os.urandom(rng.randint(4, 64) * 1024))
        write_random(samba.share_dir, "large/one.bin", args.large_mib * MIB)
        rows = []
        for case, folder in ((f"{args.small} files of 4-64 KiB", "small"),
                             (f"one {args.large_mib} MiB file", "large")):
            r = rclone_copy(samba, s3, folder, f"rclone-{folder}")
            wall, run = ours(stack, samba, folder, f"ours-{folder}")
            rows.append((case, r, wall, run, peak_rss_mib(stack)))
        print(f"\n{'case':<26}{'rclone s':>10}{'ours s':>10}{'(run s)':>10}{'ratio':>8}"
              f"{'peak RSS MiB':>15}")
        for case, r, wall, run, rss in rows:
            print(f"{case:<26}{r:>10.2f}{wall:>10.2f}{run:>10.2f}{wall / r:>8.2f}{rss:>15.1f}")
        print(f"(ratio = ours wall time / rclone time; {args.workers} transfer workers; "
              "peak RSS = highest VmHWM among workers so far)")
    finally:
        stack.stop()
        s3.stop()
        samba.stop()


if __name__ == "__main__":
    main()
