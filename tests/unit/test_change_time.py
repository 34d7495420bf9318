"""SMB's change time in the version: a same-size edit within one mtime tick is an edit, and an
index record written before change times were kept still counts as unchanged (no mass upload
after the upgrade). One rule decides (`same_content`): the scans' decisions, the transfer
worker's skips and the conditional writes all use it, and so do these tables."""
import pytest

from shared.contracts import ChangeKind as K
from shared.sync.model import (
    IndexRecord,
    Listing,
    SourceEntry,
    listed_at,
    same_content,
    synced_record,
    wire_version,
)
from shared.sync.one_way import reconcile
from shared.sync.two_way import Step, reconcile_two_way

MTIME, CHANGE = 1_718_000_000_123_456_000, 1_718_000_000_123_999_000


def src(path="a.txt", change=CHANGE, size=10, mtime=MTIME, fid="77", tag=None):
    return SourceEntry(path, size, mtime, fid, tag, change)


def idx(change=CHANGE, size=10, mtime=MTIME, fid="77", tag=None, etag="e1"):
    return IndexRecord(size, mtime, fid, owner="u-1", principal=None, etag=etag, synced_at=0.0,
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
