"""No-change re-sync of a large tree vs rclone listing the same share (issue 9, target 3).

    python bench/bench_resync.py [--files 100000] [--per-dir 100] [--repeat 2]

Builds a tree of small files, syncs it once (timed too), then times, on the unchanged tree:
`rclone lsf -R` (lists the source only), `rclone check` (lists the source and the bucket and
compares sizes) and our re-sync through the API (list the source, read the index, list the
bucket, reconcile: nothing to do). Redis is a private server, so INFO commandstats before and
after the re-sync count our commands alone (goal: no command per file); the scanner is a fresh
process before the re-sync, so its VmHWM and CPU seconds are that scan's.
Goal: our re-sync's wall time at most rclone's `check` (or `lsf -R`).
"""
from __future__ import annotations

import argparse

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
    args = ap.parse_args()
    srv = Servers("bench-resync-", redis=True)
    stack = srv.stack(2)
    try:
        make_files(srv.share, "tree", args.files, args.kib_each * 1024, per_dir=args.per_dir)
        initial, cid, _ = first_sync(stack.api(), srv, "resync", "tree")
        print(f"initial sync of {args.files} files: {initial:.1f} s", flush=True)
        _, view = resync(stack.api(), cid)  # files synced within 3 s of their last write are
        print(f"rechecked: {view['status']['run']['jobs_total']} files", flush=True)  # read again
        rows = []
        for attempt in range(args.repeat):
            lsf, out = rclone(srv, "lsf", "-R", "--files-only", folder="tree", capture=True)
            assert len(out.splitlines()) == args.files, len(out.splitlines())
            check, _ = rclone(srv, "check", "--one-way", folder="tree", bucket="resync")
            scanner = fresh_scanner(stack)
            before, cpu = redis_commands(), cpu_s(scanner)
            ours, view = resync(stack.api(), cid)
            calls = diff(redis_commands(), before)
            rss, cpu = vmhwm_mib(scanner), cpu_s(scanner) - cpu
            run = view["status"]["run"]
            assert run["jobs_total"] == 0, run  # nothing changed: nothing to do
            total = sum(calls.values())
            print(f"#{attempt + 1}: lsf {lsf:.2f} s, check {check:.2f} s, ours {ours:.2f} s "
                  f"(run {view['status']['last_duration_s']:.2f} s), scanner {rss:.0f} MiB, "
                  f"{cpu:.2f} s CPU, "
                  f"redis {total} commands: {dict(list(calls.items())[:8])}", flush=True)
            rows.append([f"#{attempt + 1}", round(lsf, 2), round(check, 2), round(ours, 2),
                         round(check / ours, 2), round(lsf / ours, 2), total,
                         f"{total / args.files:.4f}", calls.get("hscan", 0),
                         round(rss), round(cpu, 2)])
        print(f"\n{args.files:,} files in folders of {args.per_dir}, {args.kib_each} KiB each; "
              f"initial sync {initial:.1f} s")
        print(table(["run", "rclone lsf -R s", "rclone check s", "ours s",
                     "check / ours (>= 1)", "lsf / ours", "Redis commands",
                     "commands per file", "HSCAN calls (the index read)",
                     "scanner VmHWM MiB", "scanner CPU s"], rows))
        print("(the commands are the whole stack's during the re-sync: the API answering the "
              "benchmark's polls and the scheduler's 0.3 s tick included)")
    finally:
        stack.stop()
        srv.stop()


if __name__ == "__main__":
    main()
