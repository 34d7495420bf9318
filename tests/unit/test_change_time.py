"""SMB's change time in the version: a same-size edit within one mtime tick is an edit, and an
index record written before change times were kept still counts as unchanged (no mass upload
after the upgrade). One rule decides (`same_content`): the scans' decisions, the transfer
worker's skips and the conditional writes all use it, and so do these tables. Where no change
time can show such an edit (Samba answers ChangeTime = mtime), a version read within a tick of
its write is racily clean (`racily_clean`): its bytes are compared on the next run."""
import dataclasses

import pytest

from shared.contracts import ChangeKind as K
from shared.sync.model import (
    IndexRecord,
    Listing,
    SourceEntry,
    listed_at,
    racily_clean,
    same_content,
    synced_record,
    wire_version,
)
from shared.sync.one_way import reconcile
from shared.sync.two_way import Step, reconcile_two_way

MTIME, CHANGE = 1_718_000_000_123_456_000, 1_718_000_000_123_999_000
# When the indexed versions were read: an hour after their mtimes (not racily clean).
READ_AT = MTIME / 1e9 + 3600


def src(path="a.txt", change=CHANGE, size=10, mtime=MTIME, fid="77", tag=None):
    return SourceEntry(path, size, mtime, fid, tag, change)


def idx(change=CHANGE, size=10, mtime=MTIME, fid="77", tag=None, etag="e1"):
    return IndexRecord(size, mtime, fid, owner="u-1", principal=None, etag=etag, synced_at=READ_AT,
                       content_tag=tag, change_ns=change)


@pytest.mark.parametrize("listed, known, same", [
    (src(), idx(), True),
    (src(change=CHANGE + 1000), idx(), False),  # rewritten in the same tick, mtime put back
    (src(), idx(change=None), True),  # indexed before change times were kept
    (src(change=None), idx(), True),  # a backend (or a wire version) without one
    (src(size=11), idx(change=None), False),  # the old rules still hold without one
    (src(mtime=MTIME + 1000), idx(change=None), False),
    (src(fid="78"), idx(change=None), False),
    # A content hash decides where both sides have one (SharePoint keeps no change time).
    (src(tag="h1", change=None), idx(tag="h1", change=None, mtime=MTIME - 5), True),
])
def test_one_rule_decides_unchanged(listed, known, same):
    assert same_content(listed, known) is same
    assert same_content(known, listed) is same


def test_the_change_time_travels_from_the_listing_to_the_wire_and_into_the_index():
    entry = src()
    wire = wire_version(entry)
    assert wire.change_ns == CHANGE
    assert listed_at("a.txt", wire) == entry
    assert synced_record(wire, etag="e", synced_at=1.0, owner="u").change_ns == CHANGE
    # A transfer job's version compares by it too: an edit in the same tick is not skipped.
    assert not same_content(wire_version(src(change=CHANGE + 1000)), idx())


def test_one_way_a_same_tick_rewrite_is_modified_an_old_record_is_unchanged():
    plan = reconcile({"a.txt": idx(), "b.txt": idx(change=None), "c.txt": idx()},
                     Listing({"a.txt": src("a.txt", CHANGE + 1000), "b.txt": src("b.txt"),
                              "c.txt": src("c.txt")}))
    assert [(a.kind, a.path) for a in plan.actions] == [(K.MODIFIED, "a.txt")]
    assert plan.unchanged == 2


def test_two_way_a_same_tick_rewrite_at_the_source_is_pulled_an_old_record_is_left():
    index = {"a.txt": idx(), "b.txt": idx(change=None)}
    plan = reconcile_two_way(index, Listing({"a.txt": src("a.txt", CHANGE + 1000),
                                             "b.txt": src("b.txt")}),
                             {"a.txt": "e1", "b.txt": "e1"})
    assert plan.steps == [(Step.PULL, "a.txt")] and plan.unchanged == 1


# --- racily clean: a version read within a tick of its last write proves nothing -------------

def read_at(seconds_after_mtime: float, **kw) -> IndexRecord:
    return dataclasses.replace(idx(**kw), synced_at=MTIME / 1e9 + seconds_after_mtime)


@pytest.mark.parametrize("known, racy", [
    (read_at(0.5), True),  # read in the tick of the last write: another may have followed
    (read_at(2.9), True),  # FAT's 2 s tick and a second of clock skew
    (read_at(3.5), False),
    (read_at(3600), False),
    (read_at(-60), True),  # an mtime ahead of the workers' clock: racy until it passes
    (read_at(0.5, tag="h1"), False),  # a content hash decides by itself (SharePoint)
    (read_at(0.5, size=0), False),  # nothing to hide in an empty file
])
def test_a_version_read_within_a_tick_of_its_write_is_racily_clean(known, racy):
    assert racily_clean(known) is racy


def test_one_way_a_racily_clean_record_is_rechecked_an_old_one_is_not():
    plan = reconcile({"a.txt": read_at(0.5), "b.txt": read_at(3600)},
                     Listing({"a.txt": src("a.txt"), "b.txt": src("b.txt")}))
    assert [(a.kind, a.path) for a in plan.actions] == [(K.RECHECKED, "a.txt")]
    assert plan.unchanged == 1
    # Changed anyway, or missing in the bucket: sent as such (the bytes go in any case).
    plan = reconcile({"a.txt": read_at(0.5)}, Listing({"a.txt": src("a.txt", size=11)}))
    assert [a.kind for a in plan.actions] == [K.MODIFIED]
    plan = reconcile({"a.txt": read_at(0.5)}, Listing({"a.txt": src("a.txt")}), {})
    assert [a.kind for a in plan.actions] == [K.REPAIRED]


@pytest.mark.parametrize("target, steps", [
    ({"a.txt": "e1"}, [(Step.RECHECK, "a.txt")]),  # both look unchanged: compare the bytes
    ({"a.txt": "e2"}, [(Step.PUSH, "a.txt")]),  # the push checks the bytes before writing
    ({}, [(Step.DELETE_SOURCE, "a.txt")]),  # (the delete is conditional on the version)
])
def test_two_way_a_racily_clean_source_is_rechecked_when_both_sides_look_unchanged(
        target, steps):
    plan = reconcile_two_way({"a.txt": read_at(0.5)}, Listing({"a.txt": src("a.txt")}), target,
                             max_delete_share=1.0)
    assert plan.steps == steps
    assert [a.kind for a in plan.actions][:1] == [
        {Step.RECHECK: K.RECHECKED, Step.PUSH: K.PUSHED,
         Step.DELETE_SOURCE: K.DELETED_IN_SCAIDRIVE}[steps[0][0]]]
    old = reconcile_two_way({"a.txt": read_at(3600)}, Listing({"a.txt": src("a.txt")}),
                            {"a.txt": "e1"})
    assert old.steps == [] and old.unchanged == 1
