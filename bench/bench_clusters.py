"""The same one-way initial sync on one Redis and one RabbitMQ node, then on a 6-node Redis
Cluster (3 masters, 3 replicas) and a 3-node RabbitMQ cluster, all on this machine's loopback
(issue 18's target: the clusters within 1.3x of the single-node time).

    python bench/bench_clusters.py [--files 2000] [--kib 64] [--workers 2]

Both runs use the same Samba source and S3 sink, the `scaidrive-connectors up` defaults
(bench/common.py) and a fresh RabbitMQ of their own: a single node, then the cluster (quorum
queues replicated on its three nodes). On one 2-core machine the cluster's six Redis and three
Erlang VMs compete with the pipeline for the same cores, so the ratio is an upper bound of what
separate machines would show.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import Servers, first_sync, make_files, table

KIB = 1024


def timed_first_sync(srv: Servers, args, name: str, **env: str) -> float:
    """Seconds from creating the connector to its first run's end, on a stack of its own."""
    stack = srv.stack(args.workers, **env)
    try:
        return first_sync(stack.api(), srv, name, "src")[0]
    finally:
        stack.stop()


def single(srv: Servers, args) -> float:
    from tests.fixtures.rabbit_node import RabbitNode
    node = RabbitNode(consumer_timeout_ms=None, prefix="bench-single").start()
    try:
        return timed_first_sync(srv, args, "single", SCAIDRIVE_AMQP_URL=node.url)
    finally:
        node.stop()


def clustered(srv: Servers, args) -> float:
    from tests.fixtures.rabbit_cluster import RabbitCluster
    from tests.fixtures.redis_cluster import start_cluster, stop_cluster
    nodes = start_cluster(Path(tempfile.mkdtemp(prefix="bench-redis-cluster-")))
    rabbits = RabbitCluster().start()
    try:
        return timed_first_sync(srv, args, "clustered", SCAIDRIVE_AMQP_URL=rabbits.url_list,
                                SCAIDRIVE_REDIS_MODE="cluster", SCAIDRIVE_REDIS_URL=nodes.url)
    finally:
        rabbits.stop()
        stop_cluster(nodes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--kib", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    srv = Servers("bench-clusters-")
    try:
        make_files(srv.share, "src", args.files, args.kib * KIB, per_dir=50)
        for path in (srv.share / "src").rglob("*"):  # both runs read from a warm page cache
            if path.is_file():
                path.read_bytes()
        one = single(srv, args)
        print(f"single node: {one:.2f} s", flush=True)
        many = clustered(srv, args)
        print(f"\n{args.files} files of {args.kib} KiB, {args.workers} transfer workers")
        print(table(["single Redis + RabbitMQ node s", "Redis Cluster (6) + RabbitMQ cluster (3) s",
                     "cluster / single (<= 1.3)"],
                    [[round(one, 2), round(many, 2), round(many / one, 2)]]))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
