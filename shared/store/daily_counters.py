"""What the console shows beyond the current run: per-day counters (kept 35 days), per-hour
counters (kept 8 days: the charts of a day and a week) and the `stale` flag of a connector that
has not succeeded for 3 schedule periods. The job-counting scripts add to the day and the hour
in the step that counts the job (shared/store/scripts.py).

  {ns}:daily:{cid}:{YYYYMMDD}    hash counter -> value (UTC days), expires after 35 days
  {ns}:hourly:{cid}:{YYYYMMDDHH} hash counter -> value (UTC hours), expires after 8 days;
                                 also `queue_depth`: the deepest its transfer queue was seen
"""
from __future__ import annotations

import time
from datetime import UTC, datetime

from croniter import croniter

from shared.config.connector_model import Connector, schedule_seconds
from shared.store.scripts import HOURS_KEPT_S, KEEP_MAX
from shared.store.state import State

DAYS_KEPT = 35
STALE_PERIODS = 3
COUNTERS = ("files_transferred", "files_errored", "files_deleted", "files_moved",
            "files_conflicted", "bytes_transferred")
PERIODS = {"day": 1, "week": 7, "month": 30}


def _day(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y%m%d")


def _hour(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y%m%d%H")


def hourly_key(state: State, cid: str, when: float | None = None) -> str:
    """The hour's counters of a connector (the same slot as its other keys in a cluster)."""
    return state.key("hourly", cid, _hour(when or time.time()))


def daily(state: State, cid: str, counts: dict[str, int],
          when: float | None = None) -> tuple[str, int, dict[str, int]]:
    """The day's counters to add: (key, seconds kept, counters)."""
    return (state.key("daily", cid, _day(when or time.time())), DAYS_KEPT * 86400,
            {k: v for k, v in counts.items() if k in COUNTERS and v})


async def add_daily(state: State, cid: str, counts: dict[str, int],
                    when: float | None = None) -> None:
    key, ttl, counts = daily(state, cid, counts, when)
    if not counts:
        return
    hour = hourly_key(state, cid, when)
    async with state.r.pipeline(transaction=False) as p:
        for name, value in counts.items():
            p.hincrby(key, name, value)
            p.hincrby(hour, name, value)
        p.expire(key, ttl)
        p.expire(hour, HOURS_KEPT_S)
        await p.execute()


async def record_queue_depths(state: State, depths: dict[str, int],
                              when: float | None = None) -> None:
    """Keep each connector's deepest transfer queue of the hour (one script each, pipelined)."""
    if not depths:
        return
    keep_max = state.r.register_script(KEEP_MAX)
    if state.cluster:  # one slot per connector: a script call each
        for cid, depth in depths.items():
            await keep_max(keys=[hourly_key(state, cid, when)], args=[depth, HOURS_KEPT_S])
        return
    async with state.r.pipeline(transaction=False) as p:
        for cid, depth in depths.items():
            await keep_max(keys=[hourly_key(state, cid, when)], args=[depth, HOURS_KEPT_S],
                           client=p)
        await p.execute()


async def hourly_series(state: State, cid: str, hours: int,
                        now: float | None = None) -> list[dict]:
    """The last `hours` hours, oldest first: each hour's start (Unix seconds, UTC) and its
    counters (0 where nothing happened)."""
    now = now or time.time()
    start = int(now // 3600 * 3600) - (hours - 1) * 3600
    slots = [start + i * 3600 for i in range(hours)]
    async with state.r.pipeline(transaction=False) as p:
        for at in slots:
            p.hgetall(hourly_key(state, cid, at))
        rows = await p.execute()
    return [{"at": at} | {k: int(row.get(k, 0)) for k in COUNTERS}
            | {"queue_depth": int(row["queue_depth"]) if "queue_depth" in row else None}
            for at, row in zip(slots, rows, strict=True)]


async def period_totals(state: State, cid: str, now: float | None = None) -> dict[str, dict]:
    """Sums over the last day (today, UTC), week and month, from the daily hashes."""
    now = now or time.time()
    days = [_day(now - i * 86400) for i in range(max(PERIODS.values()))]
    async with state.r.pipeline(transaction=False) as p:
        for day in days:
            p.hgetall(state.key("daily", cid, day))
        daily = await p.execute()
    out = {}
    for name, n in PERIODS.items():
        out[name] = {k: sum(int(d.get(k, 0)) for d in daily[:n]) for k in COUNTERS}
    return out


async def errors_today(state: State, cids: list[str]) -> list[int]:
    async with state.r.pipeline(transaction=False) as p:
        for cid in cids:
            p.hget(state.key("daily", cid, _day(time.time())), "files_errored")
        return [int(v or 0) for v in await p.execute()]


def period_s(schedule: str, now: datetime) -> float:
    seconds = schedule_seconds(schedule)
    if seconds is not None:
        return seconds
    it = croniter(schedule, now)
    first = it.get_next(datetime)
    return (it.get_next(datetime) - first).total_seconds()


def is_stale(c: Connector, status: dict, now: float) -> bool:
    """No success for 3 schedule periods (since creation if it never succeeded)."""
    last = float(status.get("last_success_at") or c.created_at.timestamp())
    period = period_s(c.schedule, datetime.fromtimestamp(now, UTC))
    return now - last > STALE_PERIODS * period


async def raise_flag(state: State, c: Connector, flag: str, event: str, **detail) -> bool:
    """Set a status flag (stale, suspicious_empty); only the caller that set it audits it, so
    the audit log says it once per incident."""
    if not await state.flag_status(c.id, flag):
        return False
    await state.add_audit({"event": event, "connector_id": c.id, "connector_name": c.name,
                           "kind": c.kind, "actor": "system", **detail})
    return True


def flags(status: dict) -> list[str]:
    return [f for f in ("stale", "suspicious_empty") if status.get(f) == "1"]
