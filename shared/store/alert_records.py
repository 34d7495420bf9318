"""Alerts mailed to a connector's admins (services/conflicts/alerts.py), one mail per incident:
a record per (connector, condition) says the condition holds and whether its mail went out.
Key layout ({ns} = SCAIDRIVE_NAMESPACE):

  {ns}:alerts:{cid}                   hash condition -> JSON {since, marker, mailed}: the
                                      conditions that hold (auth_failed, stale, deletes_held,
                                      quota, credential_expiry)
  {ns}:alertclaim:{cid}:{condition}   string, PX: who is mailing that alert right now
  {ns}:alerted                        set of connector ids with records (a deleted connector's
                                      are dropped by the sweep)

An incident opens its record once (`open`); its mail is sent while the record says `mailed`
false, then marked (`mark_mailed`): a redelivery or the next sweep finds it mailed. The record
goes when the condition no longer holds (`clear`), so the condition coming back is a new
incident and mails again. `marker` tells incidents apart where the event carries it (the time
an auth failure or a quota crossing began, the run that held a new set of deletions, a
credential's expiry): a different marker on a
record whose marker is known is a new incident; a record opened without one (by the sweep)
adopts the first marker that comes, as the same incident.

In cluster mode the connector's id is braced (`{ns}:alerts:{<cid>}`); the set stands alone.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from shared.store.replies import text, text_hash, text_set
from shared.store.state import State

# KEYS: the connector's alerts; ARGV: condition, marker, now. Returns the record as stored.
_OPEN = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  local rec = cjson.decode(raw)
  local old = rec['marker'] or ''
  if ARGV[2] == '' or old == ARGV[2] then return raw end
  if old == '' then
    rec['marker'] = ARGV[2]
    raw = cjson.encode(rec)
    redis.call('HSET', KEYS[1], ARGV[1], raw)
    return raw
  end
end
raw = cjson.encode({since = tonumber(ARGV[3]), marker = ARGV[2], mailed = false})
redis.call('HSET', KEYS[1], ARGV[1], raw)
return raw
"""

# KEYS: the connector's alerts; ARGV: condition, marker, since. Mailed, unless the record went
# or became another incident meanwhile (that one still needs its mail). A marked incident is
# its marker; one the sweep opened without a marker is the record opened then (its `since`),
# also once it adopted an event's marker. Returns 1 if marked.
_MAILED = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if ARGV[2] == '' then
  if rec['since'] ~= tonumber(ARGV[3]) then return 0 end
elseif (rec['marker'] or '') ~= ARGV[2] then
  return 0
end
rec['mailed'] = true
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Alert:
    """A condition's record: since when it holds, the incident's marker, whether mailed."""
    condition: str
    since: float
    marker: str
    mailed: bool


def _alert(condition: str, raw: str) -> Alert:
    rec = json.loads(raw)
    return Alert(condition, float(rec.get("since") or 0), str(rec.get("marker") or ""),
                 bool(rec.get("mailed")))


class AlertRecords:
    def __init__(self, state: State):
        self.state = state
        self._open = state.r.register_script(_OPEN)
        self._mailed = state.r.register_script(_MAILED)
        self._release = state.r.register_script(_RELEASE)

    def _key(self, cid: str) -> str:
        return self.state.key("alerts", cid)

    async def open(self, cid: str, condition: str, marker: str = "") -> Alert:
        """The condition holds: its record, opened now unless this incident has one."""
        raw = await self._open(keys=[self._key(cid)], args=[condition, marker, time.time()])
        await self.state.r.sadd(self.state.key("alerted"), cid)
        return _alert(condition, text(raw))

    async def mark_mailed(self, cid: str, alert: Alert) -> bool:
        return bool(await self._mailed(keys=[self._key(cid)], args=[
            alert.condition, alert.marker, repr(alert.since)]))

    async def clear(self, cid: str, condition: str) -> bool:
        """The condition no longer holds: True if it had a record (its next return mails)."""
        return bool(await self.state.r.hdel(self._key(cid), condition))

    async def current(self, cid: str) -> dict[str, Alert]:
        raw = text_hash(await self.state.r.hgetall(self._key(cid)))
        return {cond: _alert(cond, value) for cond, value in raw.items()}

    async def alerted(self) -> set[str]:
        """Connectors with records (the sweep drops a deleted connector's)."""
        return text_set(await self.state.r.smembers(self.state.key("alerted")))

    async def forget(self, cid: str) -> None:
        await self.state.r.delete(self._key(cid))
        await self.state.r.srem(self.state.key("alerted"), cid)

    # --- who mails right now --------------------------------------------------------------

    async def claim(self, cid: str, condition: str, ttl_s: float) -> str | None:
        """A token while this caller mails the alert; None if another one is at it."""
        token = secrets.token_hex(8)
        got = await self.state.r.set(self.state.key("alertclaim", cid, condition), token,
                                     nx=True, px=int(ttl_s * 1000))
        return token if got else None

    async def release(self, cid: str, condition: str, token: str) -> None:
        await self._release(keys=[self.state.key("alertclaim", cid, condition)], args=[token])
