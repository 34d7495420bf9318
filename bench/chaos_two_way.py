"""Issue 21's chaos run, long: `python bench/chaos_two_way.py --seed N --rounds R [--seeds K]`.

The same engine as the CI test (tests/chaos/engine.py; the ledger's rules in
tests/chaos/ledger.py), on servers of its own: Samba, moto_server, an SMTP peer and a private
RabbitMQ node (restarted once per run). Runs seeds N, N+1, ... N+K-1 one after another and
prints each run's summary (operations, kills, broker restarts, conflicts and their winners,
versions written, lost edits, damaged files) and a line per seed at the end; exits 1 if any
run lost an edit, left a damaged file, left the sides different or never quiesced."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--seeds", type=int, default=1, help="how many seeds, from --seed on")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--ops", type=int, default=10, help="single-side operations a round")
    p.add_argument("--both", type=int, default=3, help="paths changed on both sides a round")
    p.add_argument("--kill-chance", type=float, default=0.25)
    p.add_argument("--broker-round", type=int, default=0, help="0: the middle round")
    p.add_argument("--files", type=int, default=24, help="the initial tree")
    p.add_argument("--workers", type=int, default=2)
    return p.parse_args()


def main() -> int:
    from bench.common import Servers as BenchServers
    from tests.chaos.engine import ChaosConfig, Servers, run_chaos
    from tests.fixtures.rabbit_node import RabbitNode
    from tests.fixtures.smtp import SmtpServer

    args = parse()
    srv = BenchServers("chaos-")
    smtp = SmtpServer().start()
    node = RabbitNode(consumer_timeout_ms=None, prefix="scaidrive-chaos").start()
    results = []
    try:
        for seed in range(args.seed, args.seed + args.seeds):
            cfg = ChaosConfig(seed=seed, rounds=args.rounds, ops_per_round=args.ops,
                              both_per_round=args.both, kill_chance=args.kill_chance,
                              broker_round=args.broker_round or (args.rounds + 1) // 2,
                              initial_files=args.files, transfer_workers=args.workers)
            logdir = Path(tempfile.mkdtemp(prefix=f"chaos-{seed}-", dir=srv.work))
            print(f"=== seed {seed}: logs in {logdir}", flush=True)
            report = run_chaos(Servers(srv.samba, srv.s3, smtp, node, logdir), cfg,
                               log=lambda line: print(line, flush=True))
            print(report.summary(), flush=True)
            results.append(report)
    finally:
        node.stop()
        smtp.stop()
        srv.stop()
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}: {len(results)} run(s)")
    for r in results:
        v = r.verdict
        print(f"seed {r.config.seed}: rounds {r.config.rounds}, operations "
              f"{sum(r.ops.values())}, kills {sum(r.kills.values())}, broker restarts "
              f"{r.broker_restarts}, conflicts {sum(r.winners.values())}, lost edits "
              f"{len(v.lost) if v else '?'}, damaged {len(v.damaged) if v else '?'}, "
              f"differ {len(r.differ)}, {'OK' if r.ok else 'FAILED'} ({r.seconds:.0f} s)")
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
