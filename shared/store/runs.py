"""Leases and runs in Redis: `RunState` is `State` (shared/store/state.py) with the methods that
start, count and close runs. The compare-and-set steps are Lua scripts (shared/store/scripts.py).

Key layout ({ns} = SCAIDRIVE_NAMESPACE):

  {ns}:lease:{cid}               run id holding the connector (PX expiry, renewed by progress)
  {ns}:run:{cid}                 hash: the current/last run and its counters
  {ns}:rundone:{run_id}          set of finished job ids (dedups redelivered jobs' counts)

In cluster mode (state.py's `key` braces the connector id) the done set carries its connector's
tag, `{ns}:rundone:{<cid>}:{run_id}`, so the counting scripts touch one slot;
`{ns}:runof:{<run_id>}` (string, the connector id, expiring with the done set) finds it from a
run id alone. The share's
usage (another slot) is then added by the store right after the script, with a plain INCRBY,
from what the script counted: a crash between the two loses that increment (the usage reads low
until the share is re-measured; an upload is never counted twice). In single mode the script
adds it in the same step, exactly once, as before.
"""
from __future__ import annotations

import time

import redis.asyncio as aioredis
from redis.typing import EncodableT

from shared.contracts import RunCounts
from shared.store.daily_counters import hourly_key
from shared.store.replies import hset_mapping, text, text_hash
from shared.store.scripts import (
    ACQUIRE,
    CLAIM,
    RECORD_OUTCOME,
    RELEASE,
    RENEW,
    SCAN_DONE,
    TAKE_ABANDONED,
)
from shared.store.state import Indexed, State

DONE_SET_TTL_MS = 7 * 86400 * 1000


class RunState(State):
    """`State` and the runs: who holds a connector (its lease) and what its run has done."""

    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        super().__init__(redis, namespace)
        self._record = redis.register_script(RECORD_OUTCOME)
        self._scan_done = redis.register_script(SCAN_DONE)
        self._acquire = redis.register_script(ACQUIRE)
        self._release = redis.register_script(RELEASE)
        self._renew = redis.register_script(RENEW)
        self._claim = redis.register_script(CLAIM)
        self._take_abandoned = redis.register_script(TAKE_ABANDONED)

    async def acquire_lease(self, cid: str, run_id: str, ttl_s: int) -> bool:
        """Free, or held by a finished run (a closer killed before it freed it: ACQUIRE)."""
        return bool(await self._acquire(keys=[self.key("lease", cid), self.key("run", cid)],
                                        args=[run_id, ttl_s * 1000]))

    async def lease_holder(self, cid: str) -> str | None:
        return text(await self.r.get(self.key("lease", cid)))

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

    async def begin_run(self, cid: str, run_id: str, reason: str, **more: str) -> None:
        """A new run's record; `more`: fields kept with it (the ids of its root span)."""
        fields: dict[EncodableT, EncodableT] = {
            "run_id": run_id, "reason": reason, "phase": "scanning", "started_at": time.time(),
            "jobs_total": -1, "jobs_done": 0}
        fields |= hset_mapping(more)
        fields |= {k: 0 for k in RunCounts.model_fields}
        async with self.r.pipeline(transaction=True) as p:
            p.delete(self.key("run", cid))
            p.hset(self.key("run", cid), mapping=fields)
            await p.execute()
        if self.cluster:
            await self.r.set(self.key("runof", run_id), cid, px=DONE_SET_TTL_MS)

    async def done_key(self, run_id: str, cid: str | None = None) -> str:
        """The run's done set (in cluster mode in its connector's slot: found by the run id
        alone if `cid` is not given)."""
        if not self.cluster:
            return self.key("rundone", run_id)
        cid = cid or text(await self.r.get(self.key("runof", run_id))) or "-"
        return self.key("rundone", cid, run_id)

    @staticmethod
    def files_waiting(run: dict) -> int:
        """Files of a run in progress that the scan published and no worker finished yet (what
        the connector has queued in the lanes)."""
        if not run or run.get("phase") == "finished":
            return 0
        return max(int(run.get("jobs_total", -1)) - int(run.get("jobs_done", 0)), 0)

    async def run(self, cid: str) -> dict[str, str]:
        return text_hash(await self.r.hgetall(self.key("run", cid)))

    async def record_outcome(self, cid: str, run_id: str, job_id: str, ttl_s: int,
                             indexed: Indexed | None = None,
                             daily: tuple[str, int, dict[str, int]] | None = None,
                             **counts: int) -> int:
        """Count a job once; in the same script, write `indexed` (its index entry and the
        share's usage: in cluster mode just after) and, if counted, add `daily` (key, ttl,
        counters) to the day's counters."""
        day_key, day_ttl, day_counts = daily or (
            self.key("daily", cid, "-") if self.cluster else self.key("daily", "-"), 0, {})
        usage = indexed.usage_delta if indexed else 0
        args: list[str | int] = [run_id, job_id, ttl_s * 1000, DONE_SET_TTL_MS,
                                 indexed.path if indexed else "",
                                 (await self.index_codec.values(cid, [indexed.record]))[0]
                                 if indexed else "",
                                 0 if self.cluster else usage, day_ttl, len(counts)]
        for pairs in (counts, day_counts):
            for name, value in pairs.items():
                args += [name, value]
        keys = [self.key("run", cid), await self.done_key(run_id, cid), self.key("lease", cid),
                self.key("index", cid), self.key("usage", indexed.share if indexed else "-"),
                day_key, hourly_key(self, cid)]
        if self.cluster:
            keys[4] = keys[3]  # never touched (usage 0): a key of the connector's slot
        result = int(await self._record(keys=keys, args=args))
        if self.cluster and indexed and result != 0:  # what the script adds in single mode
            await self.add_usage(indexed.share, usage)
        return result

    async def scan_done(self, cid: str, run_id: str, total: int, **counts: int) -> int:
        """The scan published `total` jobs; `counts` are added to the run's counters."""
        args: list[str | int] = [run_id, total]
        for name, value in counts.items():
            args += [name, value]
        return int(await self._scan_done(keys=[self.key("run", cid)], args=args))

    async def claim_close(self, cid: str, run_id: str) -> bool:
        """Take the run's closing token (the one the job-counting scripts hand out) if unclaimed."""
        return int(await self._claim(keys=[self.key("run", cid)], args=[run_id])) == 1

    async def take_abandoned(self, cid: str, run_id: str, ttl_s: int) -> bool:
        """The run's lease ran out before it ended: take it (and the closing token, even one a
        closer that died had taken) to close the run. False: finished, replaced, or taken."""
        keys = [self.key("run", cid), self.key("lease", cid)]
        return int(await self._take_abandoned(keys=keys, args=[run_id, ttl_s * 1000])) == 1

    async def forget_done(self, run_id: str, cid: str | None = None) -> None:
        """The run closed: its done set is not needed any more (a job of it arriving late is
        refused by its 'closing' flag), so its memory goes now, not in DONE_SET_TTL_MS."""
        done = [await self.done_key(run_id, cid)]
        if self.cluster:
            done.append(self.key("runof", run_id))
        await self.r.delete(*done)

    async def set_run_fields(self, cid: str, **fields: str | int | float) -> None:
        await self.r.hset(self.key("run", cid), mapping={k: v for k, v in fields.items()})

    async def add_to_run(self, cid: str, counter: str, n: int = 1, **more: int) -> None:
        """Add to the run's counters outside a job's outcome (e.g. `owners_degraded`); `more`
        counters go in the same round trip."""
        key = self.key("run", cid)
        if not more:
            await self.r.hincrby(key, counter, n)
            return
        async with self.r.pipeline(transaction=False) as p:
            for name, value in {counter: n, **more}.items():
                p.hincrby(key, name, value)
            await p.execute()
