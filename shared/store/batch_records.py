"""A batch of small files' transfers in Redis: what the batch reads before it starts and what it
writes as its files finish, each in one script call, whatever the number of files. A family of
`Store` (`Store.batches`); it writes the keys of `state.State` and `runs.RunState` (index, usage,
run, done set, lease, status, day counters) with the same meaning, one file at a time inside
the script, so a file of a batch is counted exactly like a job alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.config.connector_model import Connector
from shared.store.daily_counters import daily, hourly_key
from shared.store.runs import DONE_SET_TTL_MS, RunState
from shared.store.scripts import BATCH_CONTEXT, RECORD_BATCH
from shared.store.state import Indexed, held, share_view
from shared.sync.model import IndexRecord


@dataclass(frozen=True)
class BatchContext:
    """What a batch reads before it starts, in one round trip."""
    connector: Connector | None
    held: bool  # paused, or its credentials refused
    known: dict[str, IndexRecord]  # the index records of the batch's paths that exist
    share: dict | None  # the share asked for (with usage_bytes), if it exists


@dataclass(frozen=True)
class FileOutcome:
    """How one file of a batch ended, as its run counts it."""
    job_id: str
    counts: dict[str, int]  # run counters to add (files_transferred: 1, bytes_transferred: n)
    indexed: Indexed | None = None  # the index entry (and usage) an upload writes


@dataclass(frozen=True)
class Recorded:
    """What a flush did: `counted[i]` is True when outcome i was counted now (not before, and
    not a job of a stale run); `closing`: the run's last job was counted here, the caller
    closes it; `held`: the connector is paused or its credentials refused."""
    counted: list[bool]
    stale: bool
    closing: bool
    held: bool
    counts: dict[str, int] = field(default_factory=dict)  # what was counted, summed


class BatchRecords:
    def __init__(self, state: RunState) -> None:
        self.state = state
        self._context = state.r.register_script(BATCH_CONTEXT)
        self._record = state.r.register_script(RECORD_BATCH)

    async def context(self, cid: str, paths: list[str], share: str | None) -> BatchContext:
        key = self.state.key
        keys = [key("connector", cid), key("status", cid), key("index", cid)]
        if share and not self.state.cluster:  # in a cluster the share is in another slot
            keys += [key("share", share), key("usage", share)]
        raw, paused, auth_failed, share_raw, usage, *records = await self._context(
            keys=keys, args=paths)
        if share and self.state.cluster:
            share_raw, usage = await self.state.share_raw(share)
        known = await self.state.index_codec.records(
            cid, {p: r for p, r in zip(paths, records, strict=True) if r})
        return BatchContext(self.state.parse_connector(cid, raw), held(paused, auth_failed),
                            known, share_view(share_raw, usage) if share else None)

    async def record(self, cid: str, run_id: str, lease_ttl_s: int, share: str,
                     outcomes: list[FileOutcome]) -> Recorded:
        """Count each outcome once, write its index entry and usage, and add the day's counters,
        in one script (RECORD_BATCH); renews the run's lease. In cluster mode the usage is added
        just after the script, from its answer (runs.py says why)."""
        cluster = self.state.cluster
        day_key, day_ttl, _ = daily(self.state, cid, {})
        args: list[str | int] = [run_id, lease_ttl_s * 1000, DONE_SET_TTL_MS, day_ttl]
        values = iter(await self.state.index_codec.values(
            cid, [o.indexed.record for o in outcomes if o.indexed]))
        for o in outcomes:
            _, _, day_counts = daily(self.state, cid, o.counts)
            args += [o.job_id, o.indexed.path if o.indexed else "",
                     next(values) if o.indexed else "",
                     o.indexed.usage_delta if o.indexed and not cluster else 0,
                     _pairs(o.counts), _pairs(day_counts)]
        key = self.state.key
        keys = [key("run", cid), await self.state.done_key(run_id, cid), key("lease", cid),
                key("index", cid), key("index", cid) if cluster else key("usage", share),
                day_key, key("status", cid), hourly_key(self.state, cid)]
        status, paused, auth_failed, *flags = await self._record(keys=keys, args=args)
        counted = [bool(int(f)) for f in flags]
        if cluster:  # the usage the script adds in single mode: counted now, or a stale run's
            await self.state.add_usage(share, sum(
                o.indexed.usage_delta for o, now in zip(outcomes, counted, strict=True)
                if o.indexed and (now or int(status) == -1)))
        summed: dict[str, int] = {}
        for o, now in zip(outcomes, counted, strict=True):
            if now:
                for name, n in o.counts.items():
                    summed[name] = summed.get(name, 0) + n
        return Recorded(counted, int(status) == -1, int(status) == 2,
                        held(paused, auth_failed), summed)


    async def unfinished(self, run_id: str, job_ids: list[str],
                         cid: str | None = None) -> list[bool]:
        """For each job: not counted yet in this run?"""
        if not job_ids:
            return []
        done = await self.state.r.smismember(await self.state.done_key(run_id, cid), job_ids)
        return [not d for d in done]


def _pairs(counts: dict[str, int]) -> str:
    return ",".join(f"{name}={n}" for name, n in counts.items() if n)
