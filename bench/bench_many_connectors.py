"""Many small connectors (issue 17, target 5): N connectors of F small files each, created at
once through the API; how long until every first run has ended, what the scanner's CPU was,
and what a no-change run of one connector costs the scanner. rclone does the same work as N
`rclone copy` runs, one folder into one bucket each, one after another and 8 at a time.

    python bench/bench_many_connectors.py [--connectors 200] [--files 20] [--kib 4]

Goal: every first run done within 40 s for 200 x 20; a no-change run <= 0.1 s of scanner CPU.
The stack gets a RabbitMQ node of its own (tests/fixtures/rabbit_node.py): hundreds of
connectors mean hundreds of quorum queues, which have wedged the machine's shared node.
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from common import Servers, connector, cpu_s, make_files, rclone, table


def wait_all(api, cids: list[str], after: dict[str, str | None], timeout: float) -> None:
    """Until every connector's run (other than `after[cid]`) has ended successfully."""
    deadline, left = time.monotonic() + timeout, set(cids)
    while left:
        assert time.monotonic() < deadline, f"{len(left)} runs still going"
        for view in api.get("/connectors").json():
            run = view["status"]["run"] or {}
            if view["id"] in left and run.get("outcome") and run.get("run_id") != after.get(
                    view["id"]):
                assert run["outcome"] == "success", (view["name"], view["status"])
                left.discard(view["id"])
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connectors", type=int, default=200)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--kib", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from tests.fixtures.rabbit_node import RabbitNode
    node = RabbitNode(consumer_timeout_ms=30 * 60 * 1000).start()
    srv = Servers("bench-many-")
    try:
        stack = srv.stack(args.workers, SCAIDRIVE_AMQP_URL=node.url)
        names = [f"many-{i:04d}" for i in range(args.connectors)]
        for name in names:
            make_files(srv.share, name, args.files, args.kib * 1024)
        api = stack.api()
        scanner = next(p.pid for k, p in stack.procs.items() if k.startswith("scanner"))
        cpu0, start = cpu_s(scanner), time.perf_counter()
        cids = [connector(api, srv, name, name) for name in names]
        wait_all(api, cids, {}, timeout=3600)
        first = time.perf_counter() - start
        first_cpu = cpu_s(scanner) - cpu0

        runs = {v["id"]: (v["status"]["run"] or {}).get("run_id")
                for v in api.get("/connectors").json()}
        cpu0 = cpu_s(scanner)
        for cid in cids:
            assert api.post(f"/connectors/{cid}/sync").status_code == 202
        wait_all(api, cids, runs, timeout=3600)
        per_run_cpu = (cpu_s(scanner) - cpu0) / len(cids)

        serial = 0.0
        for name in names[: min(20, len(names))]:  # sequential rclone: extrapolated from 20
            took, _ = rclone(srv, "copy", folder=name, bucket=f"rc-{name}")
            serial += took
        serial *= len(names) / min(20, len(names))
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: rclone(srv, "copy", folder=n, bucket=f"rc8-{n}"), names))
        parallel = time.perf_counter() - start

        print(table(["connectors x files", "ours: all first runs s", "scanner CPU s (first runs)",
                     "scanner CPU per no-change run s", "rclone copy one by one s",
                     "rclone copy 8 at a time s", "rclone 8-at-a-time / ours (>= 1)"],
                    [[f"{args.connectors} x {args.files}", round(first, 1),
                      round(first_cpu, 2), f"{per_run_cpu:.3f}", round(serial, 1),
                      round(parallel, 1), round(parallel / first, 2)]]))
    finally:
        srv.stop()
        node.stop()


if __name__ == "__main__":
    main()
