"""A connector's throttles, pure (no I/O): when its runs may start and its transfers may run,
and how fast its content may move. Validated here for the connector model
(shared/config/connector_model.py); read by the scheduler (`in_window`, `next_open`) and the
transfer worker (`in_window`, `bandwidth_at`; services/transfer/throttle.py).

- `sync_windows`: `{"timezone": "Europe/Berlin", "windows": [{"days": ["mon", ..., "fri"],
  "start": "19:00", "end": "07:00"}]}`. A window whose end is not after its start crosses
  midnight: it runs from `start` on each of its days to `end` on the next day. A window may also
  be written as text: `"mon-fri 19:00-07:00"`, `"weekend 00:00-24:00"`, `"08:00-18:00"` (every
  day). Times are wall-clock times in the time zone (daylight saving included).
- `bandwidth_limit`: bytes per second, `20M`, `512k`, `1.5G` (binary units, like rclone: k =
  1024), an int (bytes per second), or `off`/null (no limit); or a timetable like rclone's
  `--bwlimit "08:00,2M 18:00,off"`: each entry's rate holds from its time until the next entry's
  (the last one's until the first one's on the next day), in the connector's time zone (its
  windows', else UTC).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_GROUPS = {"daily": DAYS, "weekdays": DAYS[:5], "weekend": DAYS[5:]}
DAY_S = 86400
WEEK_S = 7 * DAY_S
MIN_RATE = 1024  # bytes per second: below this a limit is surely a mistake
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_RATE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?(?:/s)?$", re.IGNORECASE)
_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_WINDOW_TEXT = re.compile(r"^(?:(?P<days>[a-z,\-]+)\s+)?(?P<start>\S+?)\s*-\s*(?P<end>\S+)$",
                          re.IGNORECASE)


# --- bandwidth ----------------------------------------------------------------------------

def parse_rate(value: str | int) -> int | None:
    """Bytes per second of `20M`, `512k`, `1.5G`, `1048576` (bytes), or None for `off`."""
    if isinstance(value, int):
        rate = value
    else:
        text = value.strip().lower()
        if text in ("off", ""):
            return None
        match = _RATE.match(text)
        if not match:
            raise ValueError(f"{value!r} is not a rate: use a number with a unit, like 20M, "
                             "512k or 1.5G (bytes per second), or off")
        rate = int(float(match.group(1)) * _UNITS[match.group(2)])
    if rate < MIN_RATE:
        raise ValueError(f"{value!r} is too slow: at least 1k (1024 bytes per second; a number "
                         "without a unit counts bytes)")
    return rate


def _minutes(text: str, what: str) -> int:
    """Minutes since midnight of `HH:MM` (24:00 allowed: the end of the day)."""
    match = _TIME.match(text.strip())
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError(f"{what} {text!r} is not a time: use HH:MM (00:00 to 24:00)")
    return int(match.group(1)) * 60 + int(match.group(2))


def parse_timetable(value: str) -> list[tuple[int, int | None]]:
    """`"08:00,2M 18:00,off"` as (minute of the day, bytes per second or None), by time; a plain
    rate is one entry at 00:00."""
    entries = value.split()
    if len(entries) == 1 and "," not in entries[0]:
        return [(0, parse_rate(entries[0]))]
    table: dict[int, int | None] = {}
    for entry in entries:
        when, sep, rate = entry.partition(",")
        if not sep:
            raise ValueError(f"timetable entry {entry!r}: use HH:MM,RATE like 08:00,2M")
        minute = _minutes(when, "timetable time") % (24 * 60)
        if minute in table:
            raise ValueError(f"timetable: {when} is given twice")
        table[minute] = parse_rate(rate)
    return sorted(table.items())


def _check_bandwidth(value: Any) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("give a rate like 20M or 512k, a number of bytes per second, a "
                         "timetable like '08:00,2M 18:00,off', or off")
    if isinstance(value, int):
        return parse_rate(value)
    text = " ".join(value.split())
    if all(rate is None for _, rate in parse_timetable(text)):
        return None  # off all day: no limit
    return text


# The value as given (normalized): an int of bytes per second, a rate or timetable as text.
BandwidthLimit = Annotated[int | str | None, BeforeValidator(_check_bandwidth)]


def bandwidth_at(limit: int | str | None, now: datetime, timezone: str = "UTC") -> int | None:
    """Bytes per second allowed at `now` (None: no limit)."""
    if limit is None:
        return None
    if isinstance(limit, int):
        return limit
    table = parse_timetable(limit)
    local = now.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    current = table[-1][1]  # before the first entry: the last one's, since yesterday
    for start, rate in table:
        if start > minute:
            break
        current = rate
    return current


# --- windows ------------------------------------------------------------------------------

def _days(value: Any) -> Any:
    """Day names, ranges (`mon-fri`, `fri-mon`) and groups (weekdays, weekend, daily)."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return value
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            return value  # pydantic reports it
        name = item.strip().lower()
        if name in DAY_GROUPS:
            out += DAY_GROUPS[name]
        elif "-" in name:
            first, _, last = name.partition("-")
            if first not in DAYS or last not in DAYS:
                raise ValueError(f"{item!r} is not a range of days: like mon-fri")
            i, j = DAYS.index(first), DAYS.index(last)
            out += [DAYS[(i + k) % 7] for k in range((j - i) % 7 + 1)]
        else:
            out.append(name)
    return list(dict.fromkeys(out))


class Window(BaseModel):
    """From `start` to `end` on each of `days` (crossing midnight when end <= start)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    days: Annotated[list[Day], BeforeValidator(_days)] = Field(
        default_factory=lambda: list(DAYS), min_length=1)
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str, info) -> str:
        if _minutes(value, info.field_name) == 1440 and info.field_name == "start":
            raise ValueError("a window starts before 24:00 (00:00 is the start of a day)")
        return value

    @field_validator("end")
    @classmethod
    def _not_empty(cls, value: str, info) -> str:
        start = info.data.get("start")
        if start is not None and _minutes(start, "start") % 1440 == _minutes(value, "end"):
            raise ValueError("a window's start and end are the same time: for whole days "
                             "use 00:00 to 24:00")
        return value

    def spans(self) -> list[tuple[int, int]]:
        """(second of the week it opens, seconds it lasts), one per day."""
        start = _minutes(self.start, "start") * 60
        end = _minutes(self.end, "end") * 60
        length = end - start if end > start else end + DAY_S - start
        return [(DAYS.index(d) * DAY_S + start, length) for d in self.days]


def _window(value: Any) -> Any:
    """`"mon-fri 19:00-07:00"` as a window."""
    if not isinstance(value, str):
        return value
    match = _WINDOW_TEXT.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a window: write it like 'mon-fri 19:00-07:00'")
    out = {"start": match.group("start"), "end": match.group("end")}
    return out | ({"days": match.group("days")} if match.group("days") else {})


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: use a name like Europe/Berlin or "
                         "UTC") from None
    return value


class SyncWindows(BaseModel):
    """When a connector's runs may start and its transfers run; outside: they wait."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    timezone: Annotated[str, AfterValidator(_zone)] = "UTC"
    windows: list[Annotated[Window, BeforeValidator(_window)]] = Field(min_length=1,
                                                                       max_length=50)


def timezone_of(windows: SyncWindows | None) -> str:
    """The connector's time zone (its windows'; else UTC): a bandwidth timetable's too."""
    return windows.timezone if windows is not None else "UTC"


def _week_second(local: datetime) -> int:
    return local.weekday() * DAY_S + local.hour * 3600 + local.minute * 60 + local.second


def in_window(windows: SyncWindows | None, now: datetime) -> bool:
    """May the connector run at `now` (an aware datetime)? Always, without windows."""
    if windows is None:
        return True
    second = _week_second(now.astimezone(ZoneInfo(windows.timezone)))
    return any((second - opens) % WEEK_S < length
               for w in windows.windows for opens, length in w.spans())


def next_open(windows: SyncWindows | None, now: datetime) -> datetime:
    """`now` if the connector may run now, else when its next window opens (aware, in the
    windows' time zone)."""
    if in_window(windows, now):
        return now
    assert windows is not None  # in_window is True without windows
    zone = ZoneInfo(windows.timezone)
    local = now.astimezone(zone)
    second = _week_second(local)
    wait = min((opens - second) % WEEK_S for w in windows.windows for opens, _ in w.spans())
    # Wall-clock arithmetic, then the offset of that moment (a daylight-saving change between).
    wall = local.replace(tzinfo=None, microsecond=0) + timedelta(seconds=wait)
    return max(wall.replace(tzinfo=zone), now)
