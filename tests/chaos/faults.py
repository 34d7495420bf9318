"""Faults for the chaos run: SIGKILL a random service of the stack (a transfer worker, the
scanner, identity, conflicts, the scheduler) and start a new one a moment later; restart the
stack's own RabbitMQ node (SIGKILL of the whole node, then the same node booted again on its
data directory: quorum queues and their messages survive, every service reconnects by
itself). Never the machine's shared broker on 5672: other suites run against it."""
from __future__ import annotations

import random
import time
from collections import Counter

# How often each is picked: transfer workers do the writes, so they die most.
SERVICES = {"transfer": 3, "scanner": 1, "identity": 1, "conflicts": 1, "scheduler": 1}


class Faults:
    def __init__(self, stack, node, rng: random.Random, log=print):
        self.stack, self.node, self.rng, self.log = stack, node, rng, log
        self.kills: Counter[str] = Counter()
        self.broker_restarts = 0
        self.pending: list[tuple[float, str]] = []  # (when, service) to start again

    def _live(self, service: str) -> list[str]:
        return [label for label, proc in self.stack.procs.items()
                if (label == service or label.startswith(service + "-"))
                and proc.poll() is None]

    def kill_random(self) -> str | None:
        """SIGKILL one running service; it is started again 0.5-3 s later."""
        candidates = [s for s in SERVICES if self._live(s)]
        if not candidates:
            return None
        service = self.rng.choices(candidates, [SERVICES[s] for s in candidates])[0]
        label = self.rng.choice(self._live(service))
        self.stack.kill(label)
        self.kills[service] += 1
        self.pending.append((time.monotonic() + self.rng.uniform(0.5, 3), service))
        self.log(f"  killed {label}")
        return service

    def respawn_due(self, everything: bool = False) -> None:
        now = time.monotonic()
        due = [s for when, s in self.pending if everything or when <= now]
        self.pending = [(w, s) for w, s in self.pending if not (everything or w <= now)]
        for service in due:
            self.stack.spawn(service)

    def restart_broker(self, down_s: float = 2) -> None:
        self.log("  broker: SIGKILL of the node")
        self.node.kill()
        time.sleep(down_s)
        started = time.monotonic()
        self.node.launch().wait_up(180)
        self.broker_restarts += 1
        self.log(f"  broker: back after {time.monotonic() - started:.1f} s")
