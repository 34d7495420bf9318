"""The store through Redis Sentinel (SCAIDRIVE_REDIS_MODE=sentinel) when its master is SIGKILLed:
the commands issued right after the kill wait out the failover and land on the promoted
replica, with nothing written before it lost, on every connection of the pool. (The families
themselves run in sentinel mode too: the `[sentinel]` ids of the modules in conftest's
SENTINEL_MODULES.)"""
from __future__ import annotations

import asyncio
import secrets
import time

from shared.store.state import Indexed, IndexRecord
from shared.store.store import Store
from tests.fixtures.redis_sentinel import RedisSentinels

RECORD = IndexRecord(size=4, mtime_ns=5, file_id="7", owner="u-1", principal="S-1-5-21-1",
                     etag="e", synced_at=1.0)
JOBS = 40


async def test_a_run_goes_on_across_a_failover_with_nothing_lost(redis_sentinel: RedisSentinels):
    st = Store.connect(redis_sentinel.url, "u" + secrets.token_hex(4), "sentinel")
    try:
        assert await st.acquire_lease("c", "run1", 60)
        await st.begin_run("c", "run1", "manual")
        await st.scan_done("c", "run1", JOBS, files_scanned=JOBS)
        await st.save_share({"name": "share", "quota_bytes": 10_000})
        # Half the jobs before the kill, several at once: the pool holds many connections.
        await asyncio.gather(*(job(st, i) for i in range(JOBS // 2)))
        await st.r.execute_command("WAIT", 1, 2000)  # the replica has it (ms on loopback)
        old = redis_sentinel.master_port()

        redis_sentinel.kill_master()
        start = time.monotonic()
        closed = await asyncio.gather(*(job(st, i) for i in range(JOBS // 2, JOBS)))
        took = time.monotonic() - start

        assert took < 15, f"the failover took {took:.1f}s"
        assert redis_sentinel.wait_promoted(old, timeout=5) == redis_sentinel.nodes[1]
        assert sorted(closed) == [1] * (JOBS // 2 - 1) + [2]  # the last one closed the run
        assert await job(st, 0) == 0  # a job delivered again after the failover counts nothing
        run = await st.run("c")
        assert (run["files_transferred"], run["files_scanned"]) == (str(JOBS), str(JOBS))
        ctx = await st.job_context("c", "f0.bin", "share")  # a script the new master lacked
        assert ctx.known == RECORD
        assert ctx.share == {"name": "share", "quota_bytes": 10_000, "usage_bytes": 4 * JOBS}
        assert len(await st.index("c")) == JOBS
        assert await st.lease_holder("c") == "run1"
    finally:
        await st.close()


async def job(st: Store, i: int) -> int:
    """What a transfer job writes as it ends: its index entry, the share's usage and the count,
    in one script."""
    return await st.record_outcome("c", "run1", f"j{i}", 60,
                                   Indexed(f"f{i}.bin", RECORD, "share", RECORD.size),
                                   files_transferred=1)
