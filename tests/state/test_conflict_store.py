"""ConflictStore in a real Redis: a conflict is recorded once, its path held until the decision
is applied, and of concurrent resolves exactly one wins."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts import ConflictDetected, FileVersion, SideVersion

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def store(state):
    return state.conflicts


def conflict(cid: str, path: str = "a.txt", connector: str = "c1", minutes: int = 0):
    return ConflictDetected(
        conflict_id=cid, connector_id=connector, connector_name="C", path=path,
        source=SideVersion(size=1, etag="s"), scaidrive=SideVersion(size=2, etag="t"),
        source_version=FileVersion(size=1, mtime_ns=5), detected_at=T0 + timedelta(minutes=minutes))


async def test_recorded_once_and_held_until_applied(store):
    assert await store.create(conflict("x1"))
    assert not await store.create(conflict("x1"))  # redelivered: the same conflict
    assert await store.held_paths("c1") == {"a.txt": "x1"}
    rec = await store.get("x1")
    assert (rec["state"], rec["source"]["etag"], rec["mailed"]) == ("open", "s", False)
    won, rec = await store.resolve("x1", "source", "admin")
    assert won and rec["state"] == "resolved"
    assert await store.held_paths("c1") == {"a.txt": "x1"}  # until transfer applied it
    await store.applied("x1")
    assert await store.held_paths("c1") == {}
    assert (await store.get("x1"))["applied_at"]
    assert await store.get("nope") is None


async def test_concurrent_resolves_one_wins(store):
    await store.create(conflict("x2"))
    results = await asyncio.gather(*(store.resolve("x2", w, f"admin-{i}") for i, w in
                                     enumerate(["source", "scaidrive", "keep_both"] * 4)))
    winners = [rec for won, rec in results if won]
    assert len(winners) == 1
    assert (await store.get("x2"))["resolved_by"] == winners[0]["resolved_by"]


async def test_flags_are_set_once_and_never_create_a_record(store):
    await store.create(conflict("x3"))
    assert await store.set_flag("x3", "mailed")
    assert not await store.set_flag("x3", "mailed")
    assert not await store.set_flag("ghost", "mailed") and await store.get("ghost") is None
    token = await store.claim("x3", "mail", 30)
    assert token and await store.claim("x3", "mail", 30) is None
    await store.release("x3", "mail", "not-the-token")
    assert await store.claim("x3", "mail", 30) is None
    await store.release("x3", "mail", token)
    assert await store.claim("x3", "mail", 30)


async def test_supersede_releases_the_path_and_a_newer_conflict_takes_it(store):
    await store.create(conflict("old"))
    await store.create(conflict("new", minutes=1))  # the same path, other versions
    assert (await store.get("old"))["state"] == "superseded"
    assert await store.held_paths("c1") == {"a.txt": "new"}
    await store.applied("old")  # a late apply of the old one leaves the new hold alone
    assert await store.held_paths("c1") == {"a.txt": "new"}
    won, rec = await store.supersede("new", "the source changed")
    assert won and rec["state"] == "superseded" and await store.held_paths("c1") == {}
    assert not (await store.resolve("new", "source", "admin"))[0]


async def test_list_newest_first_filtered_and_forget(store):
    await store.create(conflict("a", "1.txt", minutes=1))
    await store.create(conflict("b", "2.txt", minutes=3))
    await store.create(conflict("c", "x.txt", connector="c2", minutes=2))
    await store.resolve("b", "source", "admin")
    assert [r["id"] for r in await store.list(["c1", "c2"])] == ["b", "c", "a"]
    assert [r["id"] for r in await store.list(["c1"], state="open")] == ["a"]
    assert [r["id"] for r in await store.list(["c1", "c2"], limit=2)] == ["b", "c"]
    await store.forget_connector("c1")
    assert await store.get("a") is None and await store.held_paths("c1") == {}
    assert [r["id"] for r in await store.list(["c1", "c2"])] == ["c"]


async def test_a_stale_decision_is_superseded_once_and_its_path_released(store):
    """The transfer worker found a side changed before applying a decision: resolved ->
    superseded (compare-and-set, one winner), path released, the flags start unset."""
    await store.create(conflict("s1", "s.txt"))
    await store.resolve("s1", "scaidrive", "admin")
    assert not (await store.supersede("s1", "x"))[0]  # not open any more: the default refuses
    results = await asyncio.gather(*(store.supersede(
        "s1", "the source version changed since detection", from_state="resolved")
        for _ in range(3)))
    assert sorted(won for won, _rec in results) == [False, False, True]
    rec = await store.get("s1")
    assert (rec["state"], rec["reason"], rec["winner"]) == \
        ("superseded", "the source version changed since detection", "scaidrive")
    assert (rec["published_resolved"], rec["published_superseded"]) == (False, False)
    assert await store.held_paths("c1") == {}
    assert not (await store.resolve("s1", "source", "admin"))[0]
