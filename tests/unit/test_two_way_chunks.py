"""The two-way decision fed a chunk at a time, as the scanner feeds it from Redis
(services/scanner/two_way_scan.py), decides what it decides over whole trees
(`reconcile_two_way`, the table tests' call): the same steps, actions, moves, names set aside,
holds and counts, on seeded random trees edited, renamed (by case too), deleted and created on
both sides, with empty folders, conflicts, unreadable folders and cut-short listings. And what
it holds while it goes is the run's changes: a settled tree, or a first sync, leaves nothing
kept."""
from __future__ import annotations

import random

import pytest

from shared.sync.folders import files_only, is_folder
from shared.sync.keys import check_smb_name
from shared.sync.model import IndexRecord, ListFailure, Listing, SourceEntry
from shared.sync.two_way import Decided, TwoWayDecision, reconcile_two_way

NAMES = ["a", "A", "b", "Docs", "docs", "x.txt", "X.txt", "Sub", "sub", "bad:n", "c"]


def _path(r: random.Random) -> str:
    return "/".join(r.choice(NAMES) for _ in range(r.randint(1, 3)))


def _edited(r: random.Random, side: dict, make_new) -> None:
    """Delete, edit, rename (to another path or another case) and create on one side."""
    for p in list(side):
        x = r.random()
        if x < .15:
            del side[p]
        elif x < .25:
            side[p] = make_new(p, side[p], edited=True)
        elif x < .4:
            q = r.choice([p.swapcase(), _path(r), p.upper(), p.lower()])
            if q not in side:
                side[q] = make_new(q, side.pop(p), edited=False)
    for _ in range(r.randint(0, 3)):
        q = _path(r)
        side.setdefault(q, make_new(q, None, edited=True))


def random_case(seed: int):
    r = random.Random(seed)
    base: dict[str, tuple] = {}
    for i in range(r.randint(0, 14)):
        p = _path(r)
        if not any(q.startswith(p + "/") or p.startswith(q + "/") for q in base):
            base[p] = (f"id{i}", r.randint(1, 3), r.randint(1, 3) * 100, f"e{i}")
    index = {p: IndexRecord(size, mtime, fid if r.random() < .8 else None, owner="o",
                            principal=None, etag=etag,
                            synced_at=3600.0 if r.random() < .85 else mtime / 1e9,
                            identity_version=1 if r.random() < .85 else 0)
             for p, (fid, size, mtime, etag) in base.items()}
    source = {p: SourceEntry(p, size, mtime, fid) for p, (fid, size, mtime, _) in base.items()}
    target = {p: etag for p, (_, _, _, etag) in base.items()}

    def new_entry(path, old, edited):
        if old is None:
            return SourceEntry(path, 5, 500, f"n{r.random()}" if r.random() < .7 else None)
        return SourceEntry(path, old.size + edited, old.mtime_ns, old.file_id)

    _edited(r, source, new_entry)
    _edited(r, target, lambda path, old, edited: f"n{r.randint(0, 3)}" if old is None
            else old + "x" * edited)
    empty = None
    if r.random() < .6:
        empty = {f for f in (_path(r) for _ in range(r.randint(0, 3)))
                 if not any(q == f or q.startswith(f + "/") for q in source)}
    target |= {_path(r) + "/": "m" for _ in range(r.randint(0, 3))}
    index |= {_path(r) + "/": IndexRecord(0, 0, None, owner="o", principal=None, etag=None,
                                          synced_at=1.0) for _ in range(r.randint(0, 2))}
    failures = [ListFailure(_path(r), "x", "y")] if r.random() < .15 else []
    listing = Listing(source, failures, r.random() < .9, empty_folders=empty)
    everything = sorted(set(index) | set(source))
    conflicts = frozenset(r.sample(everything, k=1)) if everything and r.random() < .2 \
        else frozenset()
    approved = frozenset(r.sample(sorted(index), k=min(2, len(index)))) \
        if r.random() < .2 else frozenset()
    return dict(index=index, source=listing, target=target, open_conflicts=conflicts,
                max_delete_share=r.choice([0.3, 0.5, 1.0]), approved_deletes=approved,
                source_names=check_smb_name if r.random() < .5 else (lambda p: None))


def _chunks(rows: list, r: random.Random):
    while rows:
        n = r.randint(1, 4)
        yield rows[:n]
        rows = rows[n:]


def chunked(seed: int, index, source: Listing, target, open_conflicts, max_delete_share,
            approved_deletes, source_names):
    """The scanner's order: ScaiDrive-only files, listed files, then the index's leftovers;
    each in random chunks, the listing in walk order (not sorted)."""
    r = random.Random(seed)
    listed = source.entries
    flags = Listing(failures=source.failures, complete=source.complete,
                    empty_folders=source.empty_folders)
    markers = [p for p in target if is_folder(p)]
    d = TwoWayDecision(flags, len(listed), files_only(target), markers, open_conflicts,
                       max_delete_share, approved_deletes, 1, source_names)
    d.indexed_folders(p for p in index if is_folder(p) and
                      (p in target or p[:-1] in (source.empty_folders or ())))
    out = Decided()
    only = [(p, index.get(p), e) for p, e in target.items() if not is_folder(p) and p not in listed]
    for rows in _chunks(only, r):
        out.add(d.scaidrive_only(rows))
    walk = [(e, index.get(p), target.get(p)) for p, e in listed.items()]
    r.shuffle(walk)
    for rows in _chunks(walk, r):
        out.add(d.listed(rows))
    neither = [(p, rec) for p, rec in index.items() if p not in listed and p not in target]
    for rows in _chunks(neither, r):
        out.add(d.neither(rows))
    plan = d.finish()
    return plan, out


def _summary(steps, actions, plan) -> tuple:
    return (sorted((s.value, p) for s, p in steps),
            sorted((a.kind, a.path, a.from_path, repr(a.version), a.target_etag) for a in actions),
            plan.moves, {p: str(e) for p, e in plan.unwritable.items()},
            sorted((s.value, p) for s, p in plan.deletes_held), sorted(plan.deletes_withheld),
            sorted(plan.held_for_conflict), sorted(plan.relabels), plan.unchanged)


@pytest.mark.parametrize("seed", range(400))
def test_fed_in_chunks_it_decides_as_over_whole_trees(seed):
    case = random_case(seed)
    whole = reconcile_two_way(**case)
    plan, decided = chunked(seed, **case)
    assert _summary(decided.steps + plan.steps, decided.actions + plan.actions, plan) == \
        _summary(whole.steps, whole.actions, whole)


def _tree(n: int) -> dict[str, SourceEntry]:
    return {f"d{i // 10:04d}/f{i:05d}": SourceEntry(f"d{i // 10:04d}/f{i:05d}", 1, 100,
                                                   f"id{i}") for i in range(n)}


def test_a_settled_tree_and_a_first_sync_leave_nothing_kept():
    """Unchanged files, and new files no deletion could pair with, are given back as they
    come: the decision keeps none of them (its memory is the run's changes)."""
    tree = _tree(5000)
    index = {p: IndexRecord(1, 100, e.file_id, owner="o", principal=None, etag="e",
                            synced_at=3600.0) for p, e in tree.items()}
    settled = TwoWayDecision(Listing(), len(tree), len(tree), [])
    assert settled.listed([(e, index[p], "e") for p, e in tree.items()]).actions == []
    first = TwoWayDecision(Listing(), len(tree), 0, [])
    assert len(first.listed([(e, None, None) for e in tree.values()]).actions) == 5000
    assert settled.kept == {} and first.kept == {}
    assert settled.finish().unchanged == 5000 and first.finish().actions == []
