"""A share's usage recounted from its bucket now and then, and its quota warning.

`usage_bytes` is a running total: each transfer adds what it changed, in the same Redis step
that records the file. A crash between an S3 write and that step, a file deleted in the bucket
by hand, a cluster-mode increment lost (shared/store/runs.py) make it drift. Every
`SCAIDRIVE_USAGE_RECOUNT_S` (6 h) a share is recounted: the sizes of every object in its bucket
are added up (listed a page at a time, nothing held but the sum), and the usage is set to that
sum.

Why compare-and-set, not a delta: a listing takes a while, and transfers go on meanwhile. Their
increments cannot be matched with what the listing saw (an object written during the listing
may or may not be in it), so a delta from a snapshot could count such a file twice or not at
all. Instead the usage is read before counting and set to the bucket's total only if it is
still that value afterwards (one Lua step): if any transfer changed it while counting, nothing
is written and the share is counted again at the next check (a minute later). A share that one
of its connectors is running into is not counted at all until the run ends, so a count is
neither raced nor skipped over and over. What remains: a file whose object was written just
before the listing and whose increment lands just after the compare (the few milliseconds
between a transfer's S3 write and its Redis step) would be counted twice until the next
recount; runs do not overlap a count, so this needs a straggling job of a run that has already
ended.

Every `SCAIDRIVE_QUOTA_CHECK_S` (60 s) each share with a quota is checked: at 90% or more of
its quota, `share.quota_warning` is published on the events exchange and audited, once per
crossing (shared/store/usage_records.py); the conflict service mails the admins of the share's
connectors (services/conflicts/alerts.py). Under 85% the crossing is over, and the next one
warns again (the gap keeps a share hovering at the line from warning on every file).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.config.settings import Settings
from shared.contracts import ShareQuotaWarning
from shared.store.usage_records import UsageRecords

log = logging.getLogger(__name__)
WARN_AT = 0.90  # of the quota: warn
CLEAR_BELOW = 0.85  # of the quota: the crossing is over


@dataclass(frozen=True)
class Recount:
    share: str
    before: int
    after: int


async def run_forever(rt: Runtime) -> None:
    """The scheduler's slow loop: due recounts, then every share's quota."""
    cfg = rt.settings
    while True:
        try:
            await check_shares(rt, cfg)
        except Exception:  # Redis, S3 or the broker may be back next time
            log.exception("usage recount / quota check failed")
        await asyncio.sleep(cfg.quota_check_s)


async def check_shares(rt: Runtime, cfg: Settings) -> list[Recount]:
    """One pass over every share; returns the recounts that changed a usage."""
    records = rt.state.usage
    feeding = _by_share(await rt.state.connectors())
    changed = []
    for share in await rt.state.shares():
        name = share["name"]
        if await records.claim_recount(name, cfg.usage_recount_s):
            result = await recount_share(rt, records, name, feeding.get(name, []))
            if result is not None and result.before != result.after:
                changed.append(result)
        await check_quota(rt, records, name, feeding.get(name, []))
    return changed


def _by_share(connectors: list[Connector]) -> dict[str, list[Connector]]:
    out: dict[str, list[Connector]] = {}
    for c in connectors:
        out.setdefault(c.target_share, []).append(c)
    return out


async def recount_share(rt: Runtime, records: UsageRecords, share: str,
                        connectors: list[Connector]) -> Recount | None:
    """Set the share's usage to its bucket's total; None if skipped (a run is going, or a
    transfer changed the usage while counting: due again at the next check)."""
    if await _running(rt, connectors):
        await records.recount_skipped(share)
        return None
    before = await records.usage(share)
    total = await asyncio.to_thread(_bucket_total, rt, share)
    if not await records.set_usage_if(share, before, total):
        log.info("share %s: usage changed while counting, recounted at the next check", share)
        await records.recount_skipped(share)
        return None
    if total != before:
        log.warning("share %s: usage recounted from the bucket: %d bytes (was %d, %+d)",
                    share, total, before, total - before)
    return Recount(share, before, total)


async def _running(rt: Runtime, connectors: list[Connector]) -> bool:
    for c in connectors:
        run = await rt.state.run(c.id)
        if run and run.get("phase") != "finished":
            return True
    return False


def _bucket_total(rt: Runtime, share: str) -> int:
    """Blocking: the bytes of every object in the share's bucket (0 if it has none)."""
    return sum(size for _key, size in rt.storage.object_sizes(share, ""))


async def check_quota(rt: Runtime, records: UsageRecords, share: str,
                      connectors: list[Connector]) -> bool:
    """Warn once per crossing of the line; end the crossing under the clear line. True if a
    warning went out now."""
    info = await rt.state.share(share)
    quota = (info or {}).get("quota_bytes")
    if not info or not quota:
        await records.quota_cleared(share)
        return False
    usage = int(info.get("usage_bytes", 0))
    if usage < CLEAR_BELOW * quota:
        if await records.quota_cleared(share):
            log.info("share %s: usage back under %d%% of its quota", share, CLEAR_BELOW * 100)
        return False
    if usage < WARN_AT * quota or not await records.quota_crossed(share, round(time.time(), 3)):
        return False
    try:
        await _warn(rt, records, share, usage, quota, connectors)
    except Exception:
        await records.quota_cleared(share)  # not told: the next check warns again
        raise
    return True


async def _warn(rt: Runtime, records: UsageRecords, share: str, usage: int, quota: int,
                connectors: list[Connector]) -> None:
    at = await records.quota_warned(share) or time.time()
    event = ShareQuotaWarning(share=share, usage_bytes=usage, quota_bytes=quota,
                              percent=round(usage * 100 / quota, 1),
                              connector_ids=[c.id for c in connectors],
                              at=datetime.fromtimestamp(at, UTC))
    await rt.state.audit_event(event, actor="system")
    await rt.broker.publish("events", "share.quota_warning", event)
    log.warning("share %s is %.1f%% full (%d of %d bytes)", share, event.percent, usage, quota)

