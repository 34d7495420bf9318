"""One chaos run of a two-way SMB connector on the real stack, shared by the CI test
(tests/chaos/test_chaos.py: a fixed seed, a few rounds) and the long runner
(bench/chaos_two_way.py --seed N --rounds R).

The stack (tests/fixtures/stack.py) runs every service as its own process against the test
Samba share, the S3 server, an SMTP peer and a RabbitMQ node of the run's own
(tests/fixtures/rabbit_node.py), so the broker can be restarted without touching the
machine's. A run:

1. writes an initial tree on the share and creates the connector (two-way, manual review);
2. `rounds` times: asks for a run, then applies the round's seeded random operations on both
   sides (tests/chaos/ops.py) while runs go on, SIGKILLing a random service now and then and
   starting it again (tests/chaos/faults.py), and in round `broker_round` SIGKILLs the broker
   node and boots it again; once the round's operations are done, waits for the run, runs
   once more, snapshots both sides into the ledger, resolves the open conflicts with random
   winners and approves or rejects held deletions (tests/chaos/admin.py);
3. quiesces: no more operations or kills, runs until one has nothing to do and nothing is
   open or pending;
4. judges: both sides identical (paths and bytes), and the ledger's verdict (its rules are in
   tests/chaos/ledger.py): no lost edit, no file holding content the test never wrote.
"""
from __future__ import annotations

import random
import secrets
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.admin import Admin, NotQuiet
from tests.chaos.faults import Faults
from tests.chaos.ledger import Ledger, Verdict
from tests.chaos.ops import Op, Operations
from tests.chaos.sides import S3Side, SmbSide
from tests.e2e.helpers import new_connector
from tests.fixtures.net import wait_port
from tests.fixtures.stack import Stack


@dataclass(frozen=True)
class ChaosConfig:
    seed: int = 1
    rounds: int = 4
    ops_per_round: int = 6  # single-side operations a round
    both_per_round: int = 2  # paths changed on both sides in a round
    kill_chance: float = 0.2  # after each operation
    broker_round: int | None = 2  # the round in whose middle the broker restarts
    initial_files: int = 16
    transfer_workers: int = 2


@dataclass
class ChaosReport:
    config: ChaosConfig
    ops: Counter = field(default_factory=Counter)
    void: Counter = field(default_factory=Counter)
    kills: Counter = field(default_factory=Counter)
    broker_restarts: int = 0
    winners: Counter = field(default_factory=Counter)
    detected: int = 0
    superseded: int = 0
    held: Counter = field(default_factory=Counter)
    quiesce_runs: int = 0
    not_quiet: str = ""
    findings: list[str] = field(default_factory=list)  # faults of the service seen on the way
    differ: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    versions: int = 0
    files: int = 0
    temps_left: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.not_quiet and not self.findings and not self.differ and \
            bool(self.verdict and self.verdict.ok)

    def summary(self) -> str:
        v = self.verdict
        lines = [
            f"seed {self.config.seed}, rounds {self.config.rounds}, {self.seconds:.0f} s",
            f"operations: {sum(self.ops.values())} {dict(self.ops)}; void (met a change "
            f"meanwhile): {sum(self.void.values())}",
            f"kills: {sum(self.kills.values())} {dict(self.kills)}; broker restarts: "
            f"{self.broker_restarts}",
            f"conflicts detected: {self.detected}; resolved: {sum(self.winners.values())} "
            f"{dict(self.winners)}; "
            f"superseded: {self.superseded}; held deletions: {dict(self.held)}",
            f"versions written: {self.versions}; final files: {self.files}; quiesced in "
            f"{self.quiesce_runs} runs; temp files left: {self.temps_left}",
            f"kept {v.kept if v else '-'}, displaced by the test {v.displaced if v else '-'}, "
            f"explicit losers {v.losers if v else '-'}",
            f"LOST EDITS: {len(v.lost) if v else '?'}; damaged files: "
            f"{len(v.damaged) if v else '?'}; sides differ at: {len(self.differ)}",
        ]
        if self.not_quiet:
            lines.append(f"NOT QUIET: {self.not_quiet}")
        lines += [f"FINDING: {f}" for f in self.findings]
        lines += [f"differs: {d}" for d in self.differ[:20]]
        if v:
            lines += v.damaged[:20] + v.lost[:20]
        return "\n".join(lines)


@dataclass
class Servers:
    samba: Any  # tests.fixtures.samba.SambaServer
    s3: Any  # tests.fixtures.s3.S3Server, or an endpoint standing in for it
    smtp: Any  # tests.fixtures.smtp.SmtpServer
    node: Any  # tests.fixtures.rabbit_node.RabbitNode
    logdir: Path


class ChaosRun:
    def __init__(self, servers: Servers, config: ChaosConfig, log=print):
        self.srv, self.cfg, self.log = servers, config, log
        self.rng = random.Random(config.seed)
        self.ledger = Ledger()
        self.name = f"chaos-{config.seed}-{secrets.token_hex(3)}"
        samba = servers.samba
        self.smb = SmbSide(samba.mkdir(self.name), samba.root / f"{self.name}-staging",
                           self.ledger)
        self.s3 = S3Side(servers.s3, self.name, self.ledger)
        self.ops = Operations(self.rng, config.seed, self.smb, self.s3)
        self.report = ChaosReport(config)
        self.stack = Stack(servers.s3, servers.logdir, None, servers.smtp,
                           SCAIDRIVE_AMQP_URL=servers.node.url, SCAIDRIVE_CLAIM_TTL_S="3",
                           SCAIDRIVE_DELIVERY_LIMIT="5", SCAIDRIVE_LOG_LEVEL="INFO")

    def run(self) -> ChaosReport:
        started = time.monotonic()
        try:
            self._start()
            try:
                for r in range(1, self.cfg.rounds + 1):
                    self._round(r)
                self._quiesce()
            except NotQuiet as exc:
                self.report.not_quiet = str(exc)
            self._judge()
        finally:
            self.report.seconds = time.monotonic() - started
            self._collect()
            self.stack.stop()
            shutil.rmtree(self.smb.staging, ignore_errors=True)
        return self.report

    # --- steps -----------------------------------------------------------------------------

    def _start(self) -> None:
        for _ in range(self.cfg.initial_files):
            self.ops.apply(Op("smb", "create", self.ops.fresh_path(list(self.smb.tree()))))
        for service in ("api", "scheduler", "scanner", "identity", "conflicts",
                        *["transfer"] * self.cfg.transfer_workers):
            self.stack.spawn(service)
        wait_port(self.stack.port, timeout=180, proc=self.stack.procs["api"])  # a busy machine
        api = self.stack.api()
        cid = new_connector(api, self.srv.samba, self.name, self.name, sync_mode="two_way",
                            admin_emails=["chaos@example.com"])["id"]
        self.admin = Admin(self.stack, cid, self.smb, self.s3, self.ledger, self.rng, self.log)
        self.faults = Faults(self.stack, self.srv.node, self.rng, self.log)
        outcome = self.admin.wait_idle()["status"]["run"]["outcome"]
        assert outcome == "success", f"first run: {outcome}"

    def _round(self, r: int) -> None:
        self.ledger.round = r
        plan = self.ops.plan(self.smb.tree(), self.s3.tree(), self.cfg.ops_per_round,
                             self.cfg.both_per_round)
        self.log(f"round {r}: {len(plan)} operations")
        self.admin.sync()
        for i, op in enumerate(plan):
            applied = self.ops.apply(op)
            self.log(f"  {op}{'' if applied else ' (void: changed meanwhile)'}")
            if i + 1 < len(plan) and plan[i + 1].path == op.path:
                continue  # the other side's change of the same path follows at once
            self._meanwhile(r, i >= len(plan) // 2)
        self.faults.respawn_due(everything=True)
        self.admin.sync_and_wait()
        self._observe()
        self.admin.resolve_open()
        self.admin.settle_held()

    def _meanwhile(self, r: int, middle: bool) -> None:
        """Between operations: maybe a kill, the broker's restart (once, from the middle of
        its round on), a run asked for."""
        if self.rng.random() < self.cfg.kill_chance:
            self.faults.kill_random()
        if r == self.cfg.broker_round and middle and not self.faults.broker_restarts:
            self.faults.restart_broker()
        if self.rng.random() < 0.3:
            self.admin.sync()
        time.sleep(self.rng.uniform(0, 0.4))
        self.faults.respawn_due()

    def _observe(self) -> None:
        self.ledger.observed("smb", self.smb.tree())
        self.ledger.observed("s3", self.s3.tree())

    def _quiesce(self) -> None:
        self.ledger.round = self.cfg.rounds + 1
        self.faults.respawn_due(everything=True)
        self.report.quiesce_runs = self.admin.quiesce()

    def _judge(self) -> None:
        smb, s3 = self.smb.tree(), self.s3.tree()
        self.ledger.observed("smb", smb)
        self.ledger.observed("s3", s3)
        self.report.differ = [f"{p}: smb {smb.get(p, '-')[:12]} s3 {s3.get(p, '-')[:12]}"
                              for p in sorted(set(smb) | set(s3)) if smb.get(p) != s3.get(p)]
        applied = {c["id"] for c in self.admin.conflicts("resolved") if c.get("applied_at")}
        self.report.verdict = self.ledger.verdict(smb, applied)
        self.report.files = len(smb)

    def _collect(self) -> None:
        rep = self.report
        rep.ops, rep.void, rep.versions = self.ops.done, self.ops.void, len(self.ledger.written)
        rep.temps_left = self.smb.temps()
        if hasattr(self, "faults"):
            rep.kills, rep.broker_restarts = self.faults.kills, self.faults.broker_restarts
        if hasattr(self, "admin"):
            rep.winners, rep.held = self.admin.winners, self.admin.held
            rep.findings = self.admin.findings
            try:
                every = self.admin.conflicts()
            except AssertionError:
                return
            rep.detected = len(every)
            rep.superseded = sum(c["state"] == "superseded" for c in every)


def run_chaos(servers: Servers, config: ChaosConfig, log=print) -> ChaosReport:
    return ChaosRun(servers, config, log).run()
