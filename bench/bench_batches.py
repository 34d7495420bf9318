"""The cost of a file, ours against rclone's, on the same Samba source and S3 sink in one run
(issue 17, targets 1 to 4).

    python bench/bench_batches.py [--files 3000] [--small 5000] [--workers 2] [--skip-rclone]
                                  [--batch-files N] [--batch-file-max-mb M] [--rounds R]

Two trees: a realistic mixed one (`mixed_tree`: log-normal sizes, median 16 KiB, ~90 KiB mean,
~30 files a folder under dept/project folders; seeded) and `--small` files of 4 KiB. For each:
`rclone copy` at its defaults, then our first sync from creating the connector to its run's end.
Reported per file: wall time; CPU seconds of our service processes (transfer workers, identity,
scanner, scheduler, API: /proc/<pid>/stat) against rclone's (its rusage); broker messages
(RabbitMQ's messages_received_total); Redis requests (MONITOR, commands sent by clients, not
those a script runs: an upper bound on round trips, a pipeline counting each of its commands);
Redis bytes per indexed file (MEMORY USAGE of the connector's index / its entries). RabbitMQ,
Redis, smbd and moto are not counted on our side, nor the SMB and S3 servers on rclone's.

`--rounds R` copies each tree R times each way (rclone, then a new connector of ours, into new
buckets; the mixed tree's rounds first) and ends with the median of each tree's rounds'
ratios: on this 2-core machine one version's ratio moves by ±0.1 from one run to the next with
the load of the moment.
"""
from __future__ import annotations

import argparse
import math
import random
import resource
import statistics
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import redis
from common import Servers, connector, cpu_s, rclone, table

KIB = 1024
SERVICES = ("transfer", "identity", "scanner", "scheduler", "api")


def mixed_tree(root: Path, folder: str, files: int, seed: int = 17) -> int:
    """`files` files of log-normal sizes (median 16 KiB, sigma 1.9: mean ~100 KiB, a few of
    several MiB), ~30 to a folder, under dept-NN/project-NN/; returns the bytes written."""
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        size = min(int(rng.lognormvariate(math.log(16 * KIB), 1.9)), 64 * 1024 * KIB)
        path = root / folder / f"dept-{i // 300:02d}" / f"project-{i // 30 % 10:02d}" / \
            f"report-{i:05d}.docx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        total += size
    return total


def small_tree(root: Path, folder: str, files: int) -> int:
    rng = random.Random(5)
    for i in range(files):
        path = root / folder / f"d{i // 500:03d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(4 * KIB))
    return files * 4 * KIB


def broker_received() -> int:
    out = subprocess.run(["rabbitmqctl", "eval", "rabbit_global_counters:overview()."],
                         capture_output=True, text=True, check=True).stdout
    first = out.split("messages_received_total => ", 1)[1]
    return int(first.split(",", 1)[0].split("}", 1)[0])


class RedisRequests:
    """Counts commands clients send to Redis (MONITOR), leaving out those scripts run."""

    def __init__(self, url: str, ignore_port: int | None = None):
        self.monitor = redis.Redis.from_url(url).monitor()
        self.ignore_port = str(ignore_port)  # the benchmark's own waiting client
        self.count = 0
        self.by_command: Counter[str] = Counter()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RedisRequests:
        self.monitor.__enter__()
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop:
            try:
                cmd = self.monitor.next_command()
            except Exception:
                return
            if cmd.get("client_type") != "lua" and cmd.get("client_port") != self.ignore_port:
                self.count += 1
                self.by_command[cmd["command"].split(" ", 1)[0].upper()] += 1

    def __exit__(self, *exc) -> None:
        self.stop = True
        try:
            self.monitor.__exit__(*exc)
        except Exception:
            pass


def our_cpu(stack) -> dict[str, float]:
    """CPU seconds so far of each of our service processes, by service."""
    out: dict[str, float] = {}
    for label, p in stack.procs.items():
        service = label.split("-")[0]
        if service in SERVICES:
            out[service] = out.get(service, 0.0) + cpu_s(p.pid)
    return out


def idle_requests_per_s(redis_url: str, seconds: float = 5.0) -> float:
    """Redis requests a second while nothing syncs: the services' periodic polling (the
    scheduler's tick, the consumers' connector list), subtracted from a run's count."""
    with RedisRequests(redis_url) as requests:
        time.sleep(seconds)
    return requests.count / seconds


def index_bytes_per_file(redis_url: str, ns: str, cid: str) -> float:
    r = redis.Redis.from_url(redis_url)
    key = f"{ns}:index:{cid}"
    return (r.memory_usage(key, samples=0) or 0) / max(r.hlen(key), 1)


def measure(srv: Servers, stack, name: str, folder: str, files: int, redis_url: str,
            skip_rclone: bool) -> list:
    rows = []
    if not skip_rclone:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        took, _ = rclone(srv, "copy", folder=folder, bucket=f"rc-{name}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        rows.append([f"rclone copy, {name}", round(took, 2), round(cpu / files * 1000, 2),
                     "-", "-", "-"])
    cpu0, msgs0 = our_cpu(stack), broker_received()
    waiter = redis.Redis.from_url(redis_url, decode_responses=True)
    port = int(waiter.client_info()["addr"].rsplit(":", 1)[1])
    with RedisRequests(redis_url, ignore_port=port) as requests:
        start = time.perf_counter()
        cid = connector(stack.api(), srv, name, folder)
        while waiter.hget(f"{stack.ns}:run:{cid}", "phase") != "finished":
            time.sleep(0.05)  # Redis, not the API: the API's reads are not the sync's
        took = time.perf_counter() - start
    assert waiter.hget(f"{stack.ns}:run:{cid}", "outcome") == "success"
    cpu1, msgs = our_cpu(stack), broker_received() - msgs0
    idle = idle_requests_per_s(redis_url)  # after the run: the same connectors polled
    by_service = {k: round(cpu1[k] - cpu0.get(k, 0.0), 2) for k in cpu1}
    cpu = sum(by_service.values())
    print(f"{name}: CPU s by service {by_service}; Redis requests by command "
          f"{requests.by_command.most_common(8)}; idle polling {idle:.1f} requests/s", flush=True)
    rows.append([f"ours, {name}", round(took, 2), round(cpu / files * 1000, 2),
                 round(msgs / files, 3),
                 f"{requests.count / files:.3f} "
                 f"({max(requests.count - idle * took, 0) / files:.3f})",
                 round(index_bytes_per_file(redis_url, stack.ns, cid))])
    return rows


def median_ratios(rows: list) -> str:
    """Ours against rclone, round by round (rows in pairs: rclone's, then ours)."""
    pairs = list(zip(rows[::2], rows[1::2], strict=True))
    wall = sorted(ours[1] / theirs[1] for theirs, ours in pairs)
    cpu = sorted(ours[2] / theirs[2] for theirs, ours in pairs)
    return (f"rounds: {len(pairs)}; wall-time ratios {[round(w, 2) for w in wall]}, median "
            f"{statistics.median(wall):.2f}; CPU-per-file ratios {[round(c, 2) for c in cpu]}, "
            f"median {statistics.median(cpu):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--small", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-rclone", action="store_true")
    ap.add_argument("--batch-files", type=int, help="SCAIDRIVE_BATCH_FILES (0: no batches)")
    ap.add_argument("--batch-file-max-mb", type=int, help="SCAIDRIVE_BATCH_FILE_MAX_MB")
    ap.add_argument("--rounds", type=int, default=1, help="copies of each tree each way")
    args = ap.parse_args()
    import os
    srv = Servers("bench-batches-", redis=True)
    redis_url = os.environ["TEST_REDIS_URL"]
    env = {k: str(v) for k, v in (("SCAIDRIVE_BATCH_FILES", args.batch_files),
                                  ("SCAIDRIVE_BATCH_FILE_MAX_MB", args.batch_file_max_mb))
           if v is not None}
    stack = srv.stack(args.workers, **env)
    try:
        time.sleep(3)  # consumers up, imports done: not counted
        mixed = mixed_tree(srv.share, "mixed", args.files)
        print(f"mixed tree: {args.files} files, {mixed / 2**20:.0f} MiB", flush=True)
        trees = [("mixed", args.files)]
        if args.small:
            small_tree(srv.share, "small", args.small)
            trees.append(("small", args.small))
        rows: dict[str, list] = {}
        for tree, files in trees:
            rows[tree] = []
            for i in range(args.rounds):
                name = tree if i == 0 else f"{tree}{i + 1}"
                rows[tree] += measure(srv, stack, name, tree, files, redis_url,
                                      args.skip_rclone)
        print(table(["run", "wall s", "CPU ms/file", "broker msgs/file",
                     "Redis requests/file (beyond idle polling)",
                     "Redis B/indexed file"], [r for tree_rows in rows.values()
                                               for r in tree_rows]))
        if args.rounds > 1 and not args.skip_rclone:
            for tree, tree_rows in rows.items():
                print(f"{tree}: {median_ratios(tree_rows)}")
        print(f"work folder: {srv.work}")
    finally:
        stack.stop()
        srv.stop()


if __name__ == "__main__":
    main()
