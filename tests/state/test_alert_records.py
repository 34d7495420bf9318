"""Alert records (shared/store/alert_records.py) and the usage recount's compare-and-set
(shared/store/usage_records.py) against the real Redis."""
from __future__ import annotations

import asyncio

from shared.store.alert_records import AlertRecords
from shared.store.usage_records import UsageRecords


async def test_one_incident_is_mailed_once_and_a_new_one_again(state):
    alerts = AlertRecords(state)
    first = await alerts.open("c1", "stale")
    assert not first.mailed and first.marker == ""
    assert await alerts.mark_mailed("c1", first)
    assert (await alerts.open("c1", "stale")).mailed  # holds: the same incident
    assert await alerts.clear("c1", "stale")
    assert not (await alerts.open("c1", "stale")).mailed  # came back: a new incident


async def test_markers_tell_incidents_apart_and_a_sweep_record_adopts_one(state):
    alerts = AlertRecords(state)
    swept = await alerts.open("c1", "auth_failed")  # by the sweep, before the event
    await alerts.mark_mailed("c1", swept)
    adopted = await alerts.open("c1", "auth_failed", "100.000")
    assert adopted.mailed and adopted.marker == "100.000"
    assert (await alerts.open("c1", "auth_failed")).mailed  # the sweep again: same incident
    new = await alerts.open("c1", "auth_failed", "200.000")  # a later failure's event
    assert not new.mailed and new.marker == "200.000"
    assert not await alerts.mark_mailed("c1", adopted)  # the old incident's mark: not this one
    assert await alerts.mark_mailed("c1", new)


async def test_claims_and_forgetting_a_connector(state):
    alerts = AlertRecords(state)
    token = await alerts.claim("c1", "quota", 30)
    assert token and await alerts.claim("c1", "quota", 30) is None
    await alerts.release("c1", "quota", token)
    assert await alerts.claim("c1", "quota", 30)
    await alerts.open("c1", "quota", "1.000")
    assert await alerts.alerted() == {"c1"} and set(await alerts.current("c1")) == {"quota"}
    await alerts.forget("c1")
    assert await alerts.alerted() == set() and await alerts.current("c1") == {}


async def test_usage_is_set_only_if_unchanged_and_a_crossing_is_seen_once(state):
    usage = UsageRecords(state)
    await state.add_usage("s", 10)
    assert not await usage.set_usage_if("s", 7, 1000)
    assert await usage.usage("s") == 10
    assert await usage.set_usage_if("s", 10, 1000) and await usage.usage("s") == 1000
    assert await usage.claim_recount("s", 60) and not await usage.claim_recount("s", 60)
    await usage.recount_skipped("s")
    assert await usage.claim_recount("s", 60)
    assert await usage.quota_crossed("s", 5.5) and not await usage.quota_crossed("s", 6.0)
    assert await usage.quota_warned("s") == 5.5
    assert await usage.quota_cleared("s") and await usage.quota_warned("s") is None


async def test_a_mail_the_sweep_sent_counts_for_the_incident_that_adopted_a_marker_meanwhile(
        state):
    """The sweep opens the record (no marker) and mails; while its mail is on its way the
    event comes, and the record adopts the event's marker: the same incident. The sweep's mark
    must still land (before: refused as another incident's, so the next sweep mailed again)."""
    alerts = AlertRecords(state)
    swept = await alerts.open("c1", "auth_failed")
    assert not (await alerts.open("c1", "auth_failed", "100.000")).mailed  # the event, meanwhile
    assert await alerts.mark_mailed("c1", swept)
    assert (await alerts.open("c1", "auth_failed")).mailed  # the next sweep: nothing to send
    assert (await alerts.open("c1", "auth_failed", "100.000")).mailed
    await alerts.clear("c1", "auth_failed")  # a new incident opened since: its mail still due
    await asyncio.sleep(0.01)  # later (a record's `since` is kept to 0.1 ms)
    again = await alerts.open("c1", "auth_failed")
    assert not await alerts.mark_mailed("c1", swept) and not again.mailed
