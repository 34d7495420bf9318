"""No-change re-sync of a large tree vs rclone listing the same share (issue 9, target 3; issue
17, target 7: ≥ 5× faster than a `rclone copy` re-run).

    python bench/bench_resync.py [--files 100000] [--per-dir 100] [--repeat 2] [--no-copy]

Builds a tree of small files, syncs it once (timed too), then times, on the unchanged tree:
`rclone lsf -R` (lists the source only), `rclone check` (lists the source and the bucket and
compares sizes), `rclone copy` run again into a bucket it copied the tree to first (compares
sizes and modification times: nothing to copy; unless --no-copy) and our re-sync through the
API (list the source, read the index, list the bucket, reconcile: nothing to do). Redis is a
private server, so INFO commandstats before and after the re-sync count our commands alone
(goal: no command per file); the scanner is a fresh process before the re-sync, so its VmHWM
and CPU seconds are that scan's.
Goals: our re-sync's wall time at most rclone's `check` (or `lsf -R`), and a fifth of its
`copy` run again.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import (
    Servers,
    cpu_s,
    diff,
    first_sync,
    fresh_scanner,
    make_files,
    rclone,
    redis_commands,
    resync,
    table,
    vmhwm_mib,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--per-dir", type=int, default=100)
    ap.add_argument("--kib-each", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-copy", action="store_true", help="skip the `rclone copy` re-runs")
    args = ap.parse_args()
    srv = Servers("bench-resync-", redis=True)
    stack = srv.stack(2)
    try:
        make_files(srv.share, "tree", args.files, args.kib_each * 1024, per_dir=args.per_dir)
        initial, cid, _ = first_sync(stack.api(), srv, "resync", "tree")
        print(f"initial sync of {args.files} files: {initial:.1f} s", flush=True)
        _, view = resync(stack.api(), cid)  # files synced within 3 s of their last write are
        print(f"rechecked: {view['status']['run']['jobs_total']} files", flush=True)  # read again
        if not args.no_copy:
            took, _ = rclone(srv, "copy", folder="tree", bucket="resync-rclone")
            print(f"rclone copy, first: {took:.1f} s", flush=True)
        rows = []
        for attempt in range(args.repeat):
            lsf, out = rclone(srv, "lsf", "-R", "--files-only", folder="tree", capture=True)
            assert len(out.splitlines()) == args.files, len(out.splitlines())
            check, _ = rclone(srv, "check", "--one-way", folder="tree", bucket="resync")
            again = float("nan") if args.no_copy else copy_again(srv)
            scanner = fresh_scanner(stack)
            before, cpu = redis_commands(), cpu_s(scanner)
            ours, view = resync(stack.api(), cid)
            calls = diff(redis_commands(), before)
            rss, cpu = vmhwm_mib(scanner), cpu_s(scanner) - cpu
            run = view["status"]["run"]
            assert run["jobs_total"] == 0, run  # nothing changed: nothing to do
            total = sum(calls.values())
            print(f"#{attempt + 1}: lsf {lsf:.2f} s, check {check:.2f} s, "
                  f"copy again {again:.2f} s, ours {ours:.2f} s "
                  f"(run {view['status']['last_duration_s']:.2f} s), scanner {rss:.0f} MiB, "
                  f"{cpu:.2f} s CPU, "
                  f"redis {total} commands: {dict(list(calls.items())[:8])}", flush=True)
            rows.append([f"#{attempt + 1}", round(lsf, 2), round(check, 2), round(again, 2),
                         round(ours, 2), round(check / ours, 2), round(again / ours, 2),
                         round(lsf / ours, 2), total,
                         f"{total / args.files:.4f}", calls.get("hscan", 0),
                         round(rss), round(cpu, 2)])
        print(f"\n{args.files:,} files in folders of {args.per_dir}, {args.kib_each} KiB each; "
              f"initial sync {initial:.1f} s")
        print(table(["run", "rclone lsf -R s", "rclone check s", "rclone copy again s",
                     "ours s", "check / ours (>= 1)", "copy again / ours (>= 5)",
                     "lsf / ours", "Redis commands",
                     "commands per file", "HSCAN calls (the index read)",
                     "scanner VmHWM MiB", "scanner CPU s"], rows))
        print("(the commands are the whole stack's during the re-sync: the API answering the "
              "benchmark's polls and the scheduler's 0.3 s tick included)")
    finally:
        stack.stop()
        srv.stop()


def copy_again(srv: Servers) -> float:
    """`rclone copy` into the bucket it copied the tree to: seconds; it must copy nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "rclone.log"
        took, _ = rclone(srv, "copy", "-v", "--log-file", str(log), folder="tree",
                         bucket="resync-rclone")
        copied = sum(1 for line in log.read_text().splitlines() if ": Copied" in line)
    assert copied == 0, f"rclone copied {copied} files again"
    return took


if __name__ == "__main__":
    main()
