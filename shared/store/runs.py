"""Leases and runs in Redis: the part of `State` (shared/store/state.py) that starts, counts and
closes runs. The compare-and-set steps are Lua scripts (shared/store/scripts.py)."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from shared.contracts import RunCounts
from shared.store.scripts import CLAIM, RECORD_OUTCOME, RELEASE, RENEW, SCAN_DONE

if TYPE_CHECKING:
    from shared.store.state import Indexed

DONE_SET_TTL_MS = 7 * 86400 * 1000


class RunState:
    """Mixed into State: uses its `r` (the Redis client) and `key`."""

    def _register_run_scripts(self, redis) -> None:
        self._record = redis.register_script(RECORD_OUTCOME)
        self._scan_done = redis.register_script(SCAN_DONE)
        self._release = redis.register_script(RELEASE)
        self._renew = redis.register_script(RENEW)
        self._claim = redis.register_script(CLAIM)

    async def acquire_lease(self, cid: str, run_id: str, ttl_s: int) -> bool:
        return bool(await self.r.set(self.key("lease", cid), run_id, nx=True, px=ttl_s * 1000))

    async def lease_holder(self, cid: str) -> str | None:
        return await self.r.get(self.key("lease", cid))

    async def release_lease(self, cid: str, run_id: str) -> None:
        await self._release(keys=[self.key("lease", cid)], args=[run_id])

    async def renew_lease(self, cid: str, run_id: str, ttl_s: int) -> bool:
        return bool(await self._renew(keys=[self.key("lease", cid)], args=[run_id, ttl_s * 1000]))

    async def hold_lease(self, cid: str, ttl_s: int | None) -> None:
        """Pause keeps the lease without expiry (the run waits); resume puts the expiry back."""
        lease = self.key("lease", cid)
        if ttl_s is None:
            await self.r.persist(lease)
        else:
            await self.r.pexpire(lease, ttl_s * 1000)

    async def begin_run(self, cid: str, run_id: str, reason: str) -> None:
        fields = {"run_id": run_id, "reason": reason, "phase": "scanning",
                  "started_at": time.time(), "jobs_total": -1, "jobs_done": 0}
        fields |= {k: 0 for k in RunCounts.model_fields}
        async with self.r.pipeline(transaction=True) as p:
            p.delete(self.key("run", cid))
            p.hset(self.key("run", cid), mapping=fields)
            await p.execute()

    async def run(self, cid: str) -> dict:
        return await self.r.hgetall(self.key("run", cid))

    async def record_outcome(self, cid: str, run_id: str, job_id: str, ttl_s: int,
                             indexed: Indexed | None = None,
                             daily: tuple[str, int, dict[str, int]] | None = None,
                             **counts: int) -> int:
        """Count a job once; in the same script, write `indexed` (its index entry and the
        share's usage) and, if counted, add `daily` (key, ttl, counters) to the day's counters."""
        day_key, day_ttl, day_counts = daily or (self.key("daily", "-"), 0, {})
        args = [run_id, job_id, ttl_s * 1000, DONE_SET_TTL_MS,
                indexed.path if indexed else "",
                json.dumps(asdict(indexed.record)) if indexed else "",
                indexed.usage_delta if indexed else 0, day_ttl, len(counts)]
        for pairs in (counts, day_counts):
            for name, value in pairs.items():
                args += [name, value]
        keys = [self.key("run", cid), self.key("rundone", run_id), self.key("lease", cid),
                self.key("index", cid), self.key("usage", indexed.share if indexed else "-"),
                day_key]
        return int(await self._record(keys=keys, args=args))

    async def scan_done(self, cid: str, run_id: str, total: int, **counts: int) -> int:
        """The scan published `total` jobs; `counts` are added to the run's counters."""
        args: list = [run_id, total]
        for name, value in counts.items():
            args += [name, value]
        return int(await self._scan_done(keys=[self.key("run", cid)], args=args))

    async def claim_close(self, cid: str, run_id: str) -> bool:
        """Take the run's closing token (the one the job-counting scripts hand out) if unclaimed."""
        return int(await self._claim(keys=[self.key("run", cid)], args=[run_id])) == 1

    async def set_run_fields(self, cid: str, **fields) -> None:
        await self.r.hset(self.key("run", cid), mapping=fields)
