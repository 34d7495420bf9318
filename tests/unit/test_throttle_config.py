"""The throttles' settings, pure: rates ("20M", "512k", ints, off), rclone-like timetables, sync
windows (days, ranges, crossing midnight, time zones and daylight saving), `in_window` and
`next_open`, and the connector model's create and PATCH bodies refusing bad values in plain
words."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.api.form_errors import plain_message
from services.transfer.throttle import chunk_for
from shared.config.connector_model import ConnectorUpdate, parse_create
from shared.config.sync_windows import (
    SyncWindows,
    bandwidth_at,
    in_window,
    next_open,
    parse_rate,
    parse_timetable,
)

BERLIN = ZoneInfo("Europe/Berlin")
M = 1 << 20


def at(text: str, zone: ZoneInfo = BERLIN) -> datetime:
    """A wall-clock time in `zone`, as an aware datetime (2025-01-06 is a Monday)."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def windows(*specs, timezone: str = "Europe/Berlin") -> SyncWindows:
    return SyncWindows.model_validate({"timezone": timezone, "windows": list(specs)})


@pytest.mark.parametrize(("text", "rate"), [
    ("20M", 20 * M), ("512k", 512 * 1024), ("1.5G", 3 * (1 << 30) // 2), ("2MiB", 2 * M),
    ("2mb/s", 2 * M), ("4096", 4096), (1048576, M), ("off", None), ("OFF", None)])
def test_rates(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "20X", "-1M", "1.2.3M", "M"])
def test_what_is_no_rate(text):
    with pytest.raises(ValueError, match="is not a rate: use a number with a unit"):
        parse_rate(text)


def test_a_rate_too_slow_to_be_meant_is_refused():
    with pytest.raises(ValueError, match="too slow: at least 1k"):
        parse_rate("500")


def test_timetables_like_rclones():
    assert parse_timetable("08:00,2M 18:00,off") == [(480, 2 * M), (1080, None)]
    assert parse_timetable("20M") == [(0, 20 * M)]
    limit = "08:00,2M 12:00,10M 18:00,off"
    berlin = "Europe/Berlin"
    assert bandwidth_at(limit, at("2025-01-06T07:59"), berlin) is None  # yesterday's last
    assert bandwidth_at(limit, at("2025-01-06T08:00"), berlin) == 2 * M
    assert bandwidth_at(limit, at("2025-01-06T13:30"), berlin) == 10 * M
    assert bandwidth_at(limit, at("2025-01-06T23:00"), berlin) is None
    assert bandwidth_at("12:00,1M 08:00,3M", at("2025-01-06T02:00"), berlin) == M  # unordered
    # The connector's time zone: 07:30 UTC is 08:30 in Berlin in winter.
    assert bandwidth_at(limit, datetime(2025, 1, 6, 7, 30, tzinfo=UTC), "Europe/Berlin") == 2 * M
    assert bandwidth_at(limit, datetime(2025, 1, 6, 7, 30, tzinfo=UTC)) is None
    assert bandwidth_at(3 * M, at("2025-01-06T00:00")) == 3 * M


@pytest.mark.parametrize(("text", "words"), [
    ("08:00,2M 08:00,off", "given twice"), ("8am,2M 18:00,off", "not a time"),
    ("08:00 2M", "use HH:MM,RATE"), ("25:00,2M 18:00,off", "not a time"),
    ("08:00,lots 18:00,off", "not a rate")])
def test_bad_timetables_say_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=words):
        parse_timetable(text)


def test_a_window_crossing_midnight():
    nights = windows({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "19:00",
                      "end": "07:00"})
    assert not in_window(nights, at("2025-01-06T18:59"))  # Monday evening, before
    assert in_window(nights, at("2025-01-06T19:00"))
    assert in_window(nights, at("2025-01-07T06:59"))  # Monday's night, Tuesday morning
    assert not in_window(nights, at("2025-01-07T07:00"))
    assert in_window(nights, at("2025-01-11T03:00"))  # Friday's night runs into Saturday
    assert not in_window(nights, at("2025-01-11T19:30"))  # no window starts on Saturday
    assert not in_window(nights, at("2025-01-06T03:00"))  # Sunday had no night window


def test_the_windows_time_zone_counts_not_the_servers():
    office = windows("mon-fri 09:00-17:00", timezone="America/New_York")
    assert in_window(office, datetime(2025, 1, 6, 15, 0, tzinfo=UTC))  # 10:00 in New York
    assert not in_window(office, datetime(2025, 1, 6, 9, 0, tzinfo=UTC))  # 04:00 there
    # Daylight saving: 09:00 New York is 14:00 UTC in summer, 13:00 before it.
    assert in_window(office, datetime(2025, 7, 7, 13, 30, tzinfo=UTC))
    assert not in_window(office, datetime(2025, 1, 6, 13, 30, tzinfo=UTC))


def test_windows_written_as_text_and_whole_days():
    w = windows("weekend 00:00-24:00", "wed 12:00-13:00")
    assert [x.days for x in w.windows] == [["sat", "sun"], ["wed"]]
    assert in_window(w, at("2025-01-12T23:59"))  # Sunday
    assert not in_window(w, at("2025-01-13T00:00"))  # Monday
    assert in_window(w, at("2025-01-08T12:30"))
    assert windows("fri-mon 01:00-02:00").windows[0].days == ["fri", "sat", "sun", "mon"]
    assert windows("22:00-06:00").windows[0].days == ["mon", "tue", "wed", "thu", "fri",
                                                      "sat", "sun"]
    assert in_window(None, at("2025-01-06T12:00"))  # no windows: always


def test_next_open():
    nights = windows("mon-fri 19:00-07:00")
    now = at("2025-01-06T12:00")
    assert next_open(nights, now) == at("2025-01-06T19:00")
    assert next_open(nights, at("2025-01-10T20:00")) == at("2025-01-10T20:00")  # open now
    assert next_open(nights, at("2025-01-11T08:00")) == at("2025-01-13T19:00")  # weekend
    assert next_open(None, now) == now
    # Across the spring change (Berlin, 30 March 2025): opens at 20:00 local, CEST.
    evening = windows("sun 20:00-21:00")
    opens = next_open(evening, at("2025-03-30T01:00"))
    assert opens == datetime(2025, 3, 30, 18, 0, tzinfo=UTC)
    assert in_window(evening, opens) and not in_window(evening, opens - timedelta(seconds=1))


@pytest.mark.parametrize(("spec", "words"), [
    ({"days": ["mon"], "start": "10:00", "end": "10:00"}, "start and end are the same"),
    ({"days": ["monday"], "start": "10:00", "end": "11:00"}, "Input should be"),
    ({"days": ["mon"], "start": "7pm", "end": "11:00"}, "not a time"),
    ({"days": ["mon"], "start": "24:00", "end": "11:00"}, "starts before 24:00"),
    ("every night", "not a window"), ("sun-xyz 01:00-02:00", "not a range of days")])
def test_bad_windows_say_what_is_wrong(spec, words):
    with pytest.raises(ValidationError, match=words):
        windows(spec)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        windows("mon 10:00-11:00", timezone="Mars/Olympus")


SMB = {"name": "n", "target_share": "share-one", "server": "smb://h/s", "username": "u",
       "password": "p"}


def test_the_three_fields_on_create_and_patch():
    c = parse_create(SMB | {"bandwidth_limit": "20M", "max_parallel_transfers": 2,
                            "sync_windows": {"timezone": "Europe/Berlin",
                                             "windows": ["mon-fri 19:00-07:00"]}})
    assert (c.bandwidth_limit, c.max_parallel_transfers) == ("20M", 2)
    assert c.sync_windows is not None and c.sync_windows.windows[0].start == "19:00"
    assert parse_create(SMB).bandwidth_limit is None
    assert parse_create(SMB | {"bandwidth_limit": 4 * M}).bandwidth_limit == 4 * M
    assert parse_create(SMB | {"bandwidth_limit": "08:00,2M  18:00,off"}).bandwidth_limit == \
        "08:00,2M 18:00,off"
    lifted = ConnectorUpdate.model_validate({"bandwidth_limit": "off",
                                             "max_parallel_transfers": None,
                                             "sync_windows": None})
    assert lifted.model_fields_set == {"bandwidth_limit", "max_parallel_transfers",
                                       "sync_windows"}
    assert lifted.bandwidth_limit is None


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"bandwidth_limit": "fast"}, "bandwidth_limit", "is not a rate"),
    ({"bandwidth_limit": True}, "bandwidth_limit", "give a rate like 20M"),
    ({"max_parallel_transfers": 0}, "max_parallel_transfers", "must be 1 or more"),
    ({"sync_windows": {"windows": []}}, "sync_windows", "List should have at least 1 item"),
    ({"sync_windows": {"timezone": "Nowhere", "windows": ["10:00-11:00"]}}, "sync_windows",
     "unknown time zone")])
def test_bad_values_are_plain_422s(body, field, words):
    with pytest.raises(ValidationError) as info:
        parse_create(SMB | body)
    errors = info.value.errors()
    assert errors[0]["loc"][1] == field
    assert words in plain_message(dict(errors[0]))


def test_chunks_are_an_eighth_of_a_second_within_bounds():
    assert chunk_for(2 * M) == 256 * 1024
    assert chunk_for(1024) == 16 * 1024
    assert chunk_for(1 << 30) == M
