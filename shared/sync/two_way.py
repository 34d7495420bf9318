"""The two-way decision: last-synced state (the index) + source listing + ScaiDrive's etags ->
steps and the actions to publish. Pure and synchronous like the one-way decision, and made, like
it, for trees read a chunk at a time (services/scanner/two_way_scan.py reads them from Redis):
`TwoWayDecision` is fed the paths only ScaiDrive holds, then the listed ones, then those only
the index holds, and `finish`es; `reconcile_two_way`, which tests/unit/test_bisync.py calls, is
the same calls over whole trees.

Each side is compared with what the index says it held after the last sync: the source by its
version (`same_content`), ScaiDrive by the object's etag. One side changed -> copy it over; one
side deleted and the other unchanged -> delete on the other; both changed -> the transfer worker
compares the bytes (identical: just record; different: a conflict). A source version read within
a tick of its last write (`racily_clean`) is rechecked by its bytes even when both sides look
unchanged. Paths with an open conflict are left alone. Unchanged paths labelled under an older
identity mapping are relabeled. A path decided on its own is given back at once; the decision
keeps only what the run-wide steps need (`two_way_finish`): the deletions (moves' old paths,
the mass-delete hold), the new names pushed to the source (moves, names the source cannot hold:
per-file failures, never a silent rename) and the new source files whose file id and content a
deletion in ScaiDrive shares (moves). A file renamed on one side is renamed on the other (a
deletion and a creation of the same file on one side become one move, no bytes sent); moves are
paired before deletions beyond `max_delete_share` of either side are held for an admin
(`rules.hold_mass_deletes`, the one-way rule too), so a renamed folder is never held as a mass
deletion. A file renamed differently on both sides is gone from its old path on both: the old
path is forgotten and both new names are copied across. A folder ScaiDrive renamed by case only
is renamed at the source too, once ScaiDrive holds nothing under the old spelling. Empty
folders travel too (`folders`: paths ending in "/", a marker object in ScaiDrive), decided after
the hold: they only ever remove a folder that is empty, so they count toward no hold.
What the decision holds is the run's changes and the folders that may travel, not the trees.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.contracts import ChangeKind
from shared.sync.folders import FolderFill, decide_folders, files_only, is_folder
from shared.sync.keys import CaseSpellings
from shared.sync.model import (
    IndexRecord,
    Listing,
    PrincipalCheck,
    SourceEntry,
    labels_outdated,
    racily_clean,
    same_content,
)
from shared.sync.rules import Action, MoveKey, deletable, move_key, unreadable
from shared.sync.two_way_finish import RunWide, add_folders, finish_files, folders_of
from shared.sync.two_way_plan import (
    TABLE,
    NameCheck,
    Seen,
    Step,
    TwoWayPlan,
    action,
    any_name,
    side,
)

__all__ = ["Decided", "NameCheck", "Step", "TwoWayDecision", "TwoWayPlan", "reconcile_two_way"]


@dataclass
class Decided:
    """Paths decided on their own, given back as they come: their steps and the actions to
    publish (FORGET has none: only the index entry goes)."""

    steps: list[tuple[Step, str]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def add(self, other: Decided) -> None:
        self.steps += other.steps
        self.actions += other.actions


class TwoWayDecision:
    """One scan's two-way decision, fed the paths a chunk at a time (no I/O): first
    `scaidrive_only`, then `listed`, and `neither` at any time; then `finish`."""

    def __init__(self, source: Listing, n_source: int, n_target: int,
                 markers: Iterable[str], open_conflicts: frozenset[str] = frozenset(),
                 max_delete_share: float = 0.5, approved_deletes: frozenset[str] = frozenset(),
                 identity_version: int = 1, source_names: NameCheck = any_name,
                 users_imported: PrincipalCheck | None = None):
        """`source`: the listing's failures, completeness and empty folders (its entries come
        through `listed`); `n_source`, `n_target`: each side's file total; `markers`: the
        folder markers ScaiDrive holds ("a/b/"); `identity_version`, `users_imported`: as
        `labels_outdated` takes them."""
        self.source = source
        self.unreadable = unreadable(source.failures)
        self.markers = [m for m in markers if m]
        self.open_conflicts = open_conflicts
        self.identity_version, self.users_imported = identity_version, users_imported
        self.names, self.share, self.approved = source_names, max_delete_share, approved_deletes
        self.n_source, self.n_target = n_source, n_target
        self.plan = TwoWayPlan()
        self.kept: dict[str, Seen] = {}  # for the run-wide steps
        self.fill = FolderFill(source, self.markers)
        self.folders: set[str] = set()  # the index's folder entries
        self.scaidrive_paths: list[str] = []
        self.spellings: CaseSpellings | None = None  # made once the pushed names are known
        self.target_folders: set[str] = set()
        self.vanished_keys: set[MoveKey] = set()
        self.file_steps = self.file_actions = 0  # where the folders' begin, after `finish`

    def indexed_folders(self, paths: Iterable[str]) -> None:
        """Folder entries of the index (paths ending in "/")."""
        self.folders.update(paths)

    def scaidrive_only(self, rows: Iterable[tuple[str, IndexRecord | None, str]]) -> Decided:
        """Files ScaiDrive holds and the source does not list: (path, index record, etag)."""
        if self.spellings is not None:
            raise RuntimeError("the paths only ScaiDrive holds come before the listed ones")
        out = Decided()
        for path, known, etag in rows:
            self.scaidrive_paths.append(path)
            self._decide(out, path, known, None, etag)
        return out

    def listed(self, rows: Iterable[tuple[SourceEntry, IndexRecord | None, str | None]]
               ) -> Decided:
        """Files the source lists: (entry, index record, ScaiDrive's etag or None)."""
        rows = list(rows)
        self._names_pushed().add(entry.path for entry, _, _ in rows)
        self.fill.at_sources(entry.path for entry, _, _ in rows)
        held = [entry.path for entry, _, etag in rows if etag is not None]
        self.fill.in_scaidrive(held)
        self._note_target(held)
        out = Decided()
        for entry, known, etag in rows:
            self._decide(out, entry.path, known, entry, etag)
        return out

    def neither(self, rows: Iterable[tuple[str, IndexRecord]]) -> Decided:
        """Indexed paths neither side holds (a folder entry's path ends in "/")."""
        out = Decided()
        for path, known in rows:
            if is_folder(path):
                self.folders.add(path)
            else:
                self._decide(out, path, known, None, None)
        return out

    def finish(self) -> TwoWayPlan:
        """The run-wide steps on the kept paths, then the folders': the plan of what is left
        (its actions not yet given back), with the counts and the paths set aside."""
        run = RunWide(self._names_pushed(), self.target_folders, self.n_source, self.n_target,
                      self.share, self.approved, self.names)
        plan = self.plan
        finish_files(plan, self.kept, run)
        plan.held_for_conflict.sort()
        plan.deletes_withheld.sort()
        plan.relabels.sort()
        self.file_steps, self.file_actions = len(plan.steps), len(plan.actions)
        add_folders(plan, decide_folders(self.folders, self.source, self.fill), run)
        return plan

    def kept_records(self) -> dict[str, IndexRecord]:
        """The index records of the paths the plan's actions are about (for their labels)."""
        return {p: s.known for p, s in self.kept.items() if s.known is not None}

    def _decide(self, out: Decided, path: str, known: IndexRecord | None,
                entry: SourceEntry | None, etag: str | None) -> None:
        if path in self.open_conflicts:
            self.plan.held_for_conflict.append(path)
            return
        s = side(known, entry, same_content)
        t = side(None if known is None else known.etag or "", etag, str.__eq__)
        step = TABLE.get((s, t))
        if (s, t) == ("same", "same") and known is not None and racily_clean(known) and \
                not self._outdated(known):  # a relabel first, then this
            step = Step.RECHECK
        if step is None:
            self._unchanged(out, path, known, etag)
            return
        seen = Seen(step, known, entry, etag)
        if s == "deleted" and not deletable(path, self.source.complete, self.unreadable):
            self.plan.deletes_withheld.append(path)  # never delete on a listing that missed it
        elif self._kept(seen):
            self.kept[path] = seen
        else:
            out.steps.append((step, path))
            if step is not Step.FORGET:
                out.actions.append(action(step, path, seen))

    def _unchanged(self, out: Decided, path: str, known: IndexRecord | None,
                   etag: str | None) -> None:
        """Same on both sides: nothing to do, unless its labels come from an older mapping."""
        if known is not None and self._outdated(known):
            self.plan.relabels.append(path)
            out.actions.append(Action(ChangeKind.RELABELED, path, known, target_etag=etag))
        else:
            self.plan.unchanged += 1

    def _outdated(self, known: IndexRecord) -> bool:
        return labels_outdated(known, self.identity_version, self.users_imported)

    def _kept(self, seen: Seen) -> bool:
        """Does the run-wide part need this path? Deletions (a move's old path, the hold), a
        name pushed to the source (a move's new path, a name it may not hold), and a new
        source file that shares its file id and content with a file gone from the source."""
        if seen.step in (Step.DELETE_TARGET, Step.DELETE_SOURCE):
            return True
        if seen.step is Step.PUSH:
            return seen.entry is None
        if seen.step is Step.PULL and seen.known is None and seen.entry is not None:
            return bool(seen.entry.file_id) and move_key(seen.entry) in self.vanished_keys
        return False

    def _names_pushed(self) -> CaseSpellings:
        """Once every path only ScaiDrive holds is in: the names that may be pushed to the
        source (new files, markers), how the source spells them (its empty folders here, its
        files as they are listed) and how ScaiDrive does; and what a move at the source needs."""
        if self.spellings is None:
            pushed = [p for p, s in self.kept.items() if s.step is Step.PUSH]
            self.spellings = CaseSpellings([*pushed, *(m.rstrip("/") for m in self.markers)])
            self.spellings.add(self.source.empty_folders or ())
            self._note_target([*self.scaidrive_paths, *self.markers])
            self.fill.in_scaidrive(self.scaidrive_paths)
            self.vanished_keys = {move_key(s.known) for s in self.kept.values()
                                  if s.step is Step.DELETE_TARGET and s.known is not None
                                  and s.known.file_id}
        return self.spellings

    def _note_target(self, paths: Iterable[str]) -> None:
        keys = self._names_pushed().keys
        if keys:
            self.target_folders.update(f for p in paths for f in folders_of(p)
                                       if f.casefold() in keys)


def reconcile_two_way(index: Mapping[str, IndexRecord], source: Listing,
                      target: Mapping[str, str], open_conflicts: frozenset[str] = frozenset(),
                      max_delete_share: float = 0.5,
                      approved_deletes: frozenset[str] = frozenset(),
                      identity_version: int = 1,
                      source_names: NameCheck = any_name,
                      users_imported: PrincipalCheck | None = None) -> TwoWayPlan:
    """The decision over whole trees: `index` holds the records of the last sync (`etag`: the
    object ScaiDrive held then); `target` maps path -> object etag under the connector's prefix.
    `approved_deletes`: deletions an admin approved after a run held them; they are not held
    again. `source_names` checks a name pushed to the source (raises SyncError if it cannot
    hold it). Steps and actions in path order, files before folders."""
    listed = source.entries
    decision = TwoWayDecision(source, len(listed), files_only(target),
                              [p for p in target if is_folder(p)], open_conflicts,
                              max_delete_share, approved_deletes, identity_version, source_names,
                              users_imported)
    decision.indexed_folders(p for p in index if is_folder(p))
    decided = decision.scaidrive_only([(p, index.get(p), etag) for p, etag in sorted(target.items())
                                       if not is_folder(p) and p not in listed])
    decided.add(decision.listed([(listed[p], index.get(p), target.get(p)) for p in sorted(listed)]))
    decided.add(decision.neither([(p, r) for p, r in sorted(index.items())
                                  if not is_folder(p) and p not in listed and p not in target]))
    plan = decision.finish()
    return _in_order(plan, decided, decision.file_steps, decision.file_actions)


def _in_order(plan: TwoWayPlan, decided: Decided, file_steps: int,
              file_actions: int) -> TwoWayPlan:
    """The paths decided on their own put back among the plan's: files' steps and actions in
    path order, then the folders renamed by case, the relabels, the empty folders'."""
    def by_path(a: Action) -> str:
        return a.path

    plan.steps = sorted(decided.steps + plan.steps[:file_steps], key=lambda s: s[1]) + \
        plan.steps[file_steps:]
    files = [a for a in decided.actions if a.kind is not ChangeKind.RELABELED]
    files += [a for a in plan.actions[:file_actions] if not is_folder(a.path)]
    respelled = [a for a in plan.actions[:file_actions] if is_folder(a.path)]
    relabels = sorted((a for a in decided.actions if a.kind is ChangeKind.RELABELED), key=by_path)
    plan.actions = sorted(files, key=by_path) + respelled + relabels + plan.actions[file_actions:]
    return plan
