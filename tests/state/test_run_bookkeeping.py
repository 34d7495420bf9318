"""Run bookkeeping in a real Redis: redelivered jobs count once, a run closes exactly once,
a stale run can neither count nor touch a newer run's lease, and a lease left behind by a
finished run (its closer killed before freeing it) does not block the next run."""
from __future__ import annotations

import time


async def test_redelivered_jobs_count_once_and_the_last_one_closes(state):
    assert await state.acquire_lease("c", "run1", 60)
    await state.begin_run("c", "run1", "manual")
    assert await state.record_outcome("c", "run1", "j1", 60, files_transferred=1) == 1
    assert await state.record_outcome("c", "run1", "j1", 60, files_transferred=1) == 0  # again
    # The scan finishes after some jobs already did: 2 jobs in all, one still to go.
    assert await state.scan_done("c", "run1", 2, files_scanned=5) == 1
    assert await state.record_outcome("c", "run1", "j2", 60, files_errored=1) == 2  # closes
    run = await state.run("c")
    assert (run["files_transferred"], run["files_errored"], run["files_scanned"]) == ("1", "1", "5")
    assert not await state.claim_close("c", "run1")  # the closing token went out once


async def test_empty_scan_closes_at_once(state):
    await state.begin_run("c", "r", "schedule")
    assert await state.scan_done("c", "r", 0) == 2


async def test_stale_run_cannot_count_or_release(state):
    assert await state.acquire_lease("c", "old", 60)
    await state.begin_run("c", "old", "schedule")
    await state.release_lease("c", "old")
    assert await state.acquire_lease("c", "new", 60)
    assert not await state.acquire_lease("c", "third", 60)  # one run at a time
    await state.begin_run("c", "new", "manual")
    assert await state.record_outcome("c", "old", "j", 60, files_transferred=1) == -1
    await state.release_lease("c", "old")  # a stale holder's release is a no-op
    assert await state.lease_holder("c") == "new"
    assert not await state.claim_close("c", "old")
    assert await state.claim_close("c", "new")


async def test_a_lease_left_by_a_finished_run_is_taken_over_never_a_running_ones(state):
    assert await state.acquire_lease("c", "r1", 60)
    await state.begin_run("c", "r1", "manual")
    assert not await state.acquire_lease("c", "r2", 60)  # r1 is running
    await state.set_run_fields("c", phase="finished")  # its closer died before freeing it
    assert await state.acquire_lease("c", "r2", 60)
    assert await state.lease_holder("c") == "r2"
    # r2 holds it before its record is written (the record still reads r1, finished): kept.
    assert not await state.acquire_lease("c", "r3", 60)


async def test_paused_lease_does_not_expire_and_resume_restores_expiry(state):
    assert await state.acquire_lease("c", "r", 60)
    await state.hold_lease("c", None)
    assert await state.r.pttl(state.key("lease", "c")) == -1
    assert not await state.renew_lease("c", "r", 60)  # progress does not re-arm a paused lease
    await state.hold_lease("c", 60)
    assert 0 < await state.r.pttl(state.key("lease", "c")) <= 60_000
    assert await state.renew_lease("c", "r", 60)


async def test_a_finished_upload_is_indexed_and_counted_in_one_step(state):
    """The index entry and the share's usage are written with the count (one round trip per
    job); the same job again (a second worker) rewrites the entry but counts neither the run,
    the usage nor the day again."""
    from shared.store.state import Indexed, IndexRecord
    rec = IndexRecord(size=5, mtime_ns=1, file_id="7", content_tag=None, etag="e",
                      synced_at=1.0, owner="u1", method="table", principal="S-1",
                      identity_version=1)
    indexed = Indexed("a/b.txt", rec, "share1", 5)
    day = (state.key("daily", "c", "20261129"), 3600, {"files_transferred": 1})
    await state.begin_run("c", "run1", "manual")
    for expected in (1, 0):
        assert await state.record_outcome("c", "run1", "j1", 60, indexed, day,
                                          files_transferred=1) == expected
    assert await state.index_record("c", "a/b.txt") == rec
    assert await state.r.get(state.key("usage", "share1")) == "5"
    assert (await state.run("c"))["files_transferred"] == "1"
    assert await state.r.hgetall(day[0]) == {"files_transferred": "1"}
    assert 0 < await state.r.ttl(day[0]) <= 3600


async def test_a_batch_counts_each_file_once_and_a_closed_run_counts_nothing_late(state):
    """A batch's outcomes in one script: each file counted once (the same files again count
    nothing), index entries and usage written, the run closed by the flush that counted its
    last job; once closed, its done set is gone and a late file changes no counter."""
    from shared.store.batch_records import FileOutcome
    from shared.store.state import Indexed, IndexRecord
    rec = IndexRecord(size=5, mtime_ns=1, file_id="7", content_tag=None, etag="e",
                      synced_at=1.0, owner="u1", method="table", principal="S-1",
                      identity_version=1)
    files = [FileOutcome(f"j{i}", {"files_transferred": 1, "bytes_transferred": 5},
                         Indexed(f"d/f{i}", rec, "share1", 5)) for i in range(3)]
    await state.begin_run("c", "run1", "manual")
    assert await state.scan_done("c", "run1", 4) == 1
    got = await state.batches.record("c", "run1", 60, "share1", files)
    assert got.counted == [True] * 3 and not got.closing
    again = await state.batches.record("c", "run1", 60, "share1", files)  # redelivered
    assert again.counted == [False] * 3 and again.counts == {}
    last = await state.batches.record("c", "run1", 60, "share1",
                                      [FileOutcome("j9", {"files_errored": 1})])
    assert last.closing  # the fourth job: the caller closes the run
    run = await state.run("c")
    assert (run["files_transferred"], run["bytes_transferred"], run["files_errored"],
            run["jobs_done"]) == ("3", "15", "1", "4")
    assert await state.r.get(state.key("usage", "share1")) == "15"
    ctx = await state.batches.context("c", ["d/f0", "d/f1", "nope"], None)
    assert set(ctx.known) == {"d/f0", "d/f1"} and ctx.known["d/f0"].etag == "e"

    await state.forget_done("run1")  # close_run does this
    late = await state.batches.record("c", "run1", 60, "share1", files[:1])
    assert late.counted == [False]
    assert await state.record_outcome("c", "run1", "j7", 60, files_transferred=1) == 0
    assert (await state.run("c"))["files_transferred"] == "3"


async def test_counted_jobs_add_to_the_hour_as_well_as_the_day(state):
    """The charts' hourly counters move with the day's, in the same script, once per job."""
    from shared.store.batch_records import FileOutcome
    from shared.store.daily_counters import daily, hourly_series
    await state.begin_run("c", "run1", "manual")
    counts = {"files_transferred": 1, "bytes_transferred": 7}
    for _ in range(2):  # the second time: a redelivery, not counted
        await state.record_outcome("c", "run1", "j1", 60, None, daily(state, "c", counts),
                                   **counts)
    await state.batches.record("c", "run1", 60, "s", [
        FileOutcome("j2", {"files_errored": 1}), FileOutcome("j3", counts)])
    hours = await hourly_series(state, "c", 24)
    assert len(hours) == 24 and hours[-1]["at"] <= time.time() < hours[-1]["at"] + 3600
    assert {k: hours[-1][k] for k in ("files_transferred", "bytes_transferred",
                                      "files_errored")} == {"files_transferred": 2,
                                                            "bytes_transferred": 14,
                                                            "files_errored": 1}
    assert all(h["files_transferred"] == 0 for h in hours[:-1])


async def test_the_hour_keeps_its_deepest_queue(state):
    from shared.store.daily_counters import hourly_series, record_queue_depths
    for depth in (3, 40, 12):
        await record_queue_depths(state, {"c": depth, "d": depth // 3})
    hours = await hourly_series(state, "c", 2)
    assert [h["queue_depth"] for h in hours] == [None, 40]
    assert (await hourly_series(state, "d", 1))[0]["queue_depth"] == 13
