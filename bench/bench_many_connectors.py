"""Many small connectors (issue 17 target 5, issue 18's 2,000-connector targets): N connectors
of F small files each, created through the API 4 at a time; how long until every first run has
ended; then the idle stack: CPU of all our services as a share of one core, Redis commands a
second (a Redis of its own), RabbitMQ's memory (a node of its own), and `GET /connectors?limit=100`
latency; and what a no-change run of one connector costs the scanner. rclone does the first-run
work as N `rclone copy` runs, one folder into one bucket each, 8 at a time (extrapolated from
the first 40 folders).

    python bench/bench_many_connectors.py [--connectors 200] [--files 20] [--kib 4] [--idle 60]

Goals: 200 x 20 first runs within 40 s of creation; with 2,000 x 20 idle CPU <= 5% of a core,
RabbitMQ <= 512 MiB, the page p50 <= 50 ms; a no-change run <= 0.1 s of scanner CPU.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import redis
from common import Servers, cpu_s, make_files, rclone, table


def wait_all(api, cids: list[str], after: dict[str, str | None], timeout: float) -> int:
    """Until every connector's run (other than `after[cid]`) has ended successfully; a run
    that failed transiently (Samba leaving a logon unanswered under load) is started again, as
    its next scheduled run would. Returns how many were started again."""
    deadline, left, retried = time.monotonic() + timeout, set(cids), 0
    while left:
        assert time.monotonic() < deadline, f"{len(left)} runs still going"
        for view in api.get("/connectors").json():
            run = view["status"]["run"] or {}
            if view["id"] not in left or not run.get("outcome") or run.get("run_id") == after.get(
                    view["id"]):
                continue
            if run["outcome"] == "failed" and (run.get("error") or "").startswith("transient"):
                after[view["id"]] = run["run_id"]
                assert api.post(f"/connectors/{view['id']}/sync").status_code == 202
                retried += 1
                continue
            assert run["outcome"] == "success", (view["name"], view["status"])
            left.discard(view["id"])
        time.sleep(1)
    return retried


def create_retrying(api, srv, name: str, attempts: int = 3) -> str:
    """Share `name` and its connector; a save-time check that Samba left unanswered under this
    load (a logon timing out: a 422 at `server`) is tried again, as an admin would press Save
    again."""
    assert api.post("/shares", json={"name": name}).status_code == 201
    body = {"name": name, "kind": "smb", "smb_encryption": "off", "target_share": name,
            "server": f"smb://127.0.0.1:{srv.samba.port}/{srv.samba.share}/{name}",
            "username": srv.samba.username, "password": srv.samba.password, "schedule": "1h"}
    for _ in range(attempts - 1):
        resp = api.post("/connectors", json=body)
        if resp.status_code != 422 or "did not answer the logon" not in resp.text:
            break
    else:
        resp = api.post("/connectors", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def creation_to_end(api) -> list[float]:
    """Each connector's seconds from its creation to its first run's end."""
    lags = []
    for view in api.get("/connectors").json():
        ended = datetime.fromisoformat(view["status"]["run"]["finished_at"])
        lags.append((ended - datetime.fromisoformat(view["created_at"])).total_seconds())
    return lags


def stack_cpu(stack) -> float:
    return sum(cpu_s(p.pid) for p in stack.procs.values())


def rabbit_mib(node) -> float:
    """The node's memory as RabbitMQ counts it (what its memory alarm compares)."""
    out = node.ctl("eval", "erlang:memory(total).")
    return int(out.strip()) / 2 ** 20


def page_p50_ms(api, samples: int = 40) -> float:
    times, cursor = [], None
    for _ in range(samples):
        start = time.perf_counter()
        resp = api.get("/connectors", params={"limit": 100} | ({"cursor": cursor} if cursor
                                                                 else {}))
        times.append((time.perf_counter() - start) * 1000)
        cursor = resp.headers.get("X-Next-Cursor")
    return statistics.median(times)


def idle(stack, srv, node, api, seconds: float, settle: float) -> list:
    """Idle cost once every first run is over: let the runs' ends and a sweep pass (`settle`
    seconds), then read; each service's share is printed too."""
    time.sleep(settle)
    r = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])  # the bench's own Redis
    each0 = {name: cpu_s(p.pid) for name, p in stack.procs.items()}
    cmds0 = r.info("stats")["total_commands_processed"]
    time.sleep(seconds)
    each = {name: (cpu_s(p.pid) - each0[name]) / seconds for name, p in stack.procs.items()}
    cmds = (r.info("stats")["total_commands_processed"] - cmds0) / seconds
    print("idle CPU by service: " + ", ".join(f"{name} {100 * cpu:.2f}%" for name, cpu in
                                              sorted(each.items(), key=lambda kv: -kv[1])),
          flush=True)
    return [f"{100 * sum(each.values()):.2f}%", round(cmds), round(rabbit_mib(node)),
            round(page_p50_ms(api), 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connectors", type=int, default=200)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--kib", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--idle", type=float, default=60, help="seconds of idle measurement")
    ap.add_argument("--settle", type=float, default=20,
                    help="seconds after the last first run before the idle measurement")
    args = ap.parse_args()
    from tests.fixtures.rabbit_node import RabbitNode
    node = RabbitNode(consumer_timeout_ms=30 * 60 * 1000).start()
    srv = Servers("bench-many-", redis=True)
    try:
        stack = srv.stack(args.workers, SCAIDRIVE_AMQP_URL=node.url)
        names = [f"many-{i:04d}" for i in range(args.connectors)]
        for name in names:
            make_files(srv.share, name, args.files, args.kib * 1024)
        api = stack.api()
        api.timeout = httpx.Timeout(120)  # a create checks the file server: slow under load
        scanner = next(p.pid for k, p in stack.procs.items() if k.startswith("scanner"))
        cpu0, start = cpu_s(scanner), time.perf_counter()
        took: list[float] = []

        def create(name: str) -> str:
            t0 = time.perf_counter()
            cid = create_retrying(api, srv, name)
            took.append(time.perf_counter() - t0)
            return cid

        with ThreadPoolExecutor(4) as pool:
            cids = list(pool.map(create, names))
        created = time.perf_counter() - start
        print(f"created {len(cids)} in {created:.1f} s: a create p50 "
              f"{statistics.median(took):.2f} s, max {max(took):.2f} s", flush=True)
        retried = wait_all(api, cids, {}, timeout=3600)
        first = time.perf_counter() - start
        print(f"first runs started again after a transient failure: {retried}", flush=True)
        lags = creation_to_end(api)
        first_cpu = cpu_s(scanner) - cpu0
        idle_row = idle(stack, srv, node, api, args.idle, args.settle)
        print(f"first runs: all ended {first:.1f} s after the first create; idle: {idle_row}",
              flush=True)

        few = cids[:200]
        runs = {v["id"]: (v["status"]["run"] or {}).get("run_id")
                for v in api.get("/connectors").json()}
        cpu0 = cpu_s(scanner)
        for cid in few:
            assert api.post(f"/connectors/{cid}/sync").status_code == 202
        wait_all(api, few, runs, timeout=3600)
        per_run_cpu = (cpu_s(scanner) - cpu0) / len(few)

        sample = names[: min(40, len(names))]
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: rclone(srv, "copy", folder=n, bucket=f"rc8-{n}"), sample))
        parallel = (time.perf_counter() - start) * len(names) / len(sample)

        print(table(["connectors x files", "creation to first run's end, p50 s", "max s"],
                    [[f"{args.connectors} x {args.files}", round(statistics.median(lags), 1),
                      round(max(lags), 1)]]))
        print(table(["connectors x files", "created in s", "ours: all first runs s",
                     "scanner CPU s (first runs)", "scanner CPU per no-change run s",
                     "rclone copy 8 at a time s (extrapolated)", "rclone / ours (>= 1)"],
                    [[f"{args.connectors} x {args.files}", round(created, 1), round(first, 1),
                      round(first_cpu, 2), f"{per_run_cpu:.3f}", round(parallel, 1),
                      round(parallel / first, 2)]]))
        print(table(["idle: our services' CPU (one core = 100%)", "Redis commands/s",
                     "RabbitMQ MiB", "GET /connectors?limit=100 p50 ms"], [idle_row]))
    finally:
        srv.stop()
        node.stop()


if __name__ == "__main__":
    main()
