"""A share's usage recounted from its bucket (services/scheduler/usage_recount.py), and its
quota warning, once per crossing. Key layout ({ns} = SCAIDRIVE_NAMESPACE):

  {ns}:usage:{share}       int (state.State's family): bytes stored, kept incrementally by the
                           transfer scripts; set here only by compare-and-set (`set_usage_if`)
  {ns}:recounted:{share}   string, EX the recount interval: recounted lately, or being recounted
                           now; the share is not due again until it expires
  {ns}:quotawarn:{share}   string: when the usage crossed the warning line (epoch s); deleted
                           once it fell below the clear line, so the next crossing warns again

Every operation names one key (one slot in cluster mode).
"""
from __future__ import annotations

from shared.store.replies import text
from shared.store.state import State

# KEYS: usage; ARGV: the value read before counting, the bucket's total. 1 if set.
_SET_IF = """
local now = tonumber(redis.call('GET', KEYS[1]) or '0')
if now ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


class UsageRecords:
    def __init__(self, state: State):
        self.state = state
        self._set_if = state.r.register_script(_SET_IF)

    async def usage(self, share: str) -> int:
        return int(text(await self.state.r.get(self.state.key("usage", share))) or 0)

    async def set_usage_if(self, share: str, expected: int, total: int) -> bool:
        """Usage := total, only if it is still `expected` (no transfer added to it meanwhile)."""
        return bool(await self._set_if(keys=[self.state.key("usage", share)],
                                       args=[expected, total]))

    async def claim_recount(self, share: str, interval_s: float) -> bool:
        """True if the share is due (not recounted within `interval_s`) and now ours to count;
        one scheduler of many wins."""
        return bool(await self.state.r.set(self.state.key("recounted", share), "1", nx=True,
                                           ex=max(1, int(interval_s))))

    async def recount_skipped(self, share: str) -> None:
        """Not counted after all (busy, or changed while counting): due at the next check."""
        await self.state.r.delete(self.state.key("recounted", share))

    async def quota_crossed(self, share: str, at: float) -> bool:
        """The usage is over the warning line: True only for the first to see this crossing."""
        return bool(await self.state.r.set(self.state.key("quotawarn", share), str(at), nx=True))

    async def quota_warned(self, share: str) -> float | None:
        """When the current crossing began; None while the share is under the line."""
        raw = text(await self.state.r.get(self.state.key("quotawarn", share)))
        return float(raw) if raw else None

    async def quota_cleared(self, share: str) -> bool:
        return bool(await self.state.r.delete(self.state.key("quotawarn", share)))
