"""CPU seconds per process for one first sync of many small files (issue 9, target 2).

    python bench/bench_cpu_small.py [--count 2000] [--kib 4] [--workers 2] [--runs 1]
                                    [--pyspy transfer|identity|scanner]

Reads utime+stime from /proc/<pid>/stat of every process around the sync: the transfer
workers, identity, scanner, moto (the sink), RabbitMQ (beam.smp), Redis, smbd and the rest of
the stack. Redis is the benchmark's own; so can RabbitMQ be (TEST_AMQP_URL, BENCH_RABBIT_PID).
With --pyspy, py-spy records the first process of that service (GIL samples, native frames)
into a flame graph in the benchmark's work folder.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from common import Servers, cpu_s, first_sync, make_files, table


def pids_named(comm: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == comm:
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


def groups(srv: Servers, stack) -> dict[str, list[int]]:
    """Process groups to measure: ours by service, then the servers."""
    out: dict[str, list[int]] = {}
    for label, proc in stack.procs.items():
        name = "transfer workers" if label.startswith("transfer") else label
        out.setdefault(name, []).append(proc.pid)
    out["moto (sink)"] = [srv.s3.proc.pid]
    # BENCH_RABBIT_PID: a RabbitMQ of the benchmark's own (else every beam.smp counts)
    rabbit = os.environ.get("BENCH_RABBIT_PID")
    out["RabbitMQ"] = [int(rabbit)] if rabbit else pids_named("beam.smp")
    out["Redis"] = [srv.redis.pid]
    out["smbd"] = pids_named("smbd")
    return out


def snapshot(g: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_s(p) for p in pids) for name, pids in g.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--kib", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--pyspy", choices=("transfer", "identity", "scanner"))
    args = ap.parse_args()
    srv = Servers("bench-cpu-", redis=True)
    stack = srv.stack(args.workers)
    try:
        time.sleep(3)  # consumers up, imports done: not counted
        rows = []
        for run in range(args.runs):
            folder = f"cpu{run}"
            make_files(srv.share, folder, args.count, args.kib * 1024, per_dir=500)
            g = groups(srv, stack)
            spy = _pyspy(stack, args.pyspy, srv.work / f"pyspy-{args.pyspy}-{run}.txt") \
                if args.pyspy else None
            before = snapshot(g)
            took, _, _ = first_sync(stack.api(), srv, f"cpu-{run}", folder)
            after = snapshot(g)
            if spy:
                spy.wait(120)
            used = {k: after[k] - before[k] for k in g}
            rows.append((took, used))
            print(f"run {run}: {took:.2f} s, {args.count / took:.0f} files/s", flush=True)
        names = list(rows[0][1])
        print(table(["process", *[f"run {i} CPU s" for i in range(len(rows))]],
                    [[n, *[round(r[1][n], 2) for r in rows]] for n in names] +
                    [["wall time", *[round(r[0], 2) for r in rows]]]))
        print(f"work folder: {srv.work}")
    finally:
        stack.stop()
        srv.stop()


def _pyspy(stack, service: str, out: Path) -> subprocess.Popen:
    label = next(k for k in stack.procs if k.startswith(service))
    exe = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen([str(exe), "record", "--gil", "--native", "--rate", "200",
                             "--duration", "20", "--format", "raw", "-o", str(out),
                             "--pid", str(stack.procs[label].pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
