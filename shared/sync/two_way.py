"""The two-way decision: last-synced state (the index) + source listing + target listing ->
steps and the actions to publish. Pure and synchronous like `reconcile`: the two-way scan
(services/scanner/two_way_scan.py) reads both sides and the index, calls `reconcile_two_way`
once and carries out what it returns; tests/unit/test_bisync.py is its table.

Each side is compared with what the index says it held after the last sync: the source by its
version (`same_content`), the target by the object's etag. One side changed -> copy it over;
one side deleted and the other unchanged -> delete on the other; both changed -> the transfer
worker compares the bytes (identical: just record; different: a conflict). A source version
read within a tick of its last write (`racily_clean`) is rechecked by its bytes even when
both sides look unchanged. Paths with an open
conflict are left alone. Unchanged paths labelled under an older identity mapping are
relabeled. New ScaiDrive names the source cannot hold are not pushed (`unwritable`: per-file
failures, never a silent rename). A file renamed on one side is renamed on the other
(`renames`: a deletion and a creation of the same file on one side become one move, no bytes
sent); moves are paired before deletions beyond `max_delete_share` of either side are held for
an admin instead of applied (`rules.hold_mass_deletes`, the one-way rule too), so a renamed
folder is never held as a mass deletion. A file renamed differently on both sides is gone
from its old path on both: the old path is forgotten and both new names are copied across
(the file ends under both names on both sides; nothing is lost). A folder ScaiDrive renamed by
case only is renamed at the source too (a folder job beside its files' moves, or alone for an
empty folder), once ScaiDrive holds nothing under the old spelling. Empty folders travel too
(`folders`: paths ending in "/", a marker object in ScaiDrive), decided after the hold: they
only ever remove a folder that is empty, so they count toward no side's total or hold.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from shared.contracts import ChangeKind
from shared.errors import SyncError
from shared.sync import renames
from shared.sync.folders import FolderPlan, decide_folders, files_only, is_folder
from shared.sync.keys import case_collisions
from shared.sync.model import IndexRecord, Listing, racily_clean, same_content
from shared.sync.rules import Action, deletable, hold_mass_deletes, unreadable


class Step(StrEnum):
    PULL = "pull"  # source -> target
    PUSH = "push"  # target -> source
    DELETE_TARGET = "delete_target"
    DELETE_SOURCE = "delete_source"
    FORGET = "forget"  # gone on both sides: drop the index entry
    RECORD = "record"  # an empty folder on both sides, not indexed yet: index it
    BOTH_CHANGED = "both_changed"  # compare contents: record if identical, else a conflict
    MOVE_TARGET = "move_target"  # renamed at the source: the object moves in ScaiDrive
    MOVE_SOURCE = "move_source"  # renamed in ScaiDrive: the file is renamed at the source
    RECHECK = "recheck"  # unchanged on both sides, the source's read racy: compare its bytes


# Raises SyncError if the source cannot hold a name written back to it (its backend's rules).
NameCheck = Callable[[str], object]


def _any_name(path: str) -> None:
    return None


@dataclass
class TwoWayPlan:
    steps: list[tuple[Step, str]] = field(default_factory=list)
    unchanged: int = 0
    held_for_conflict: list[str] = field(default_factory=list)
    deletes_held: list[tuple[Step, str]] = field(default_factory=list)  # awaiting approval
    deletes_withheld: list[str] = field(default_factory=list)  # listing incomplete there
    unwritable: dict[str, SyncError] = field(default_factory=dict)  # not pushed: bad names
    relabels: list[str] = field(default_factory=list)
    moves: dict[str, str] = field(default_factory=dict)  # a MOVE_* step's path -> its old path
    actions: list[Action] = field(default_factory=list)  # every step but FORGET, and relabels

    def forgotten(self) -> list[str]:
        """Paths gone from both sides: only their index entry is left to drop."""
        return [path for step, path in self.steps if step is Step.FORGET]

    def recorded(self) -> list[str]:
        """Empty folders both sides hold that the index does not know yet: index them."""
        return [path for step, path in self.steps if step is Step.RECORD]

    def held_sides(self) -> dict[str, str]:
        """Held deletions: path -> the side it would have been deleted from."""
        return {path: "source" if step is Step.DELETE_SOURCE else "scaidrive"
                for step, path in self.deletes_held}


A = TypeVar("A")
B = TypeVar("B")


def _side(old: A | None, new: B | None, same: Callable[[A, B], bool]) -> str:
    if old is None:
        return "new" if new is not None else "absent"
    if new is None:
        return "deleted"
    return "same" if same(old, new) else "changed"


# (source side, target side) -> step; "same"/"same" and "absent"/"absent" need nothing.
_TABLE = {
    ("new", "absent"): Step.PULL, ("absent", "new"): Step.PUSH,
    ("new", "new"): Step.BOTH_CHANGED,
    ("changed", "same"): Step.PULL, ("same", "changed"): Step.PUSH,
    ("changed", "changed"): Step.BOTH_CHANGED,
    ("deleted", "same"): Step.DELETE_TARGET, ("same", "deleted"): Step.DELETE_SOURCE,
    ("deleted", "deleted"): Step.FORGET,
    ("changed", "deleted"): Step.PULL, ("deleted", "changed"): Step.PUSH,  # a change wins
}
_KIND = {Step.PUSH: ChangeKind.PUSHED, Step.DELETE_TARGET: ChangeKind.DELETED,
         Step.DELETE_SOURCE: ChangeKind.DELETED_IN_SCAIDRIVE,
         Step.BOTH_CHANGED: ChangeKind.BOTH_CHANGED, Step.MOVE_TARGET: ChangeKind.MOVED,
         Step.MOVE_SOURCE: ChangeKind.MOVED_IN_SCAIDRIVE, Step.RECHECK: ChangeKind.RECHECKED}


def reconcile_two_way(index: Mapping[str, IndexRecord], source: Listing,
                      target: Mapping[str, str], open_conflicts: frozenset[str] = frozenset(),
                      max_delete_share: float = 0.5,
                      approved_deletes: frozenset[str] = frozenset(),
                      identity_version: int = 1,
                      source_names: NameCheck = _any_name) -> TwoWayPlan:
    """`index` holds the records of the last sync (`etag`: the object ScaiDrive held then);
    `target` maps path -> object etag under the connector's prefix. `approved_deletes`:
    deletions an admin approved after a run held them; they are not held again.
    `source_names` checks a name pushed to the source (raises SyncError if it cannot hold it)."""
    plan = TwoWayPlan()
    unreadable_paths = unreadable(source.failures)
    files = {p for p in (*index, *source.entries, *target) if not is_folder(p)}
    for path in sorted(files):
        if path in open_conflicts:
            plan.held_for_conflict.append(path)
            continue
        known = index.get(path)
        s = _side(known, source.entries.get(path), same_content)
        t = _side(None if known is None else known.etag or "", target.get(path), str.__eq__)
        step = _TABLE.get((s, t))
        if (s, t) == ("same", "same") and known is not None and racily_clean(known) and \
                known.identity_version == identity_version:  # a relabel first, then this
            step = Step.RECHECK
        if step is None:
            _unchanged(plan, path, known, identity_version)
        elif s == "deleted" and not deletable(path, source.complete, unreadable_paths):
            plan.deletes_withheld.append(path)  # never delete on a listing that missed it
        else:
            plan.steps.append((step, path))
    renamed_by_case = _renamed_by_case(plan, index, target)
    _drop_unwritable(plan, source, source_names, renamed_by_case)
    _pair_renames(plan, index, source, target)
    if renamed_by_case:  # a case-only rename left unpaired collides after all
        _drop_unwritable(plan, source, source_names)
    _hold_mass_deletes(plan, len(source.entries), files_only(target), max_delete_share,
                       approved_deletes)
    plan.actions = [_action(step, path, plan.moves.get(path), index, source, target)
                    for step, path in plan.steps if step is not Step.FORGET]
    plan.actions += [Action(ChangeKind.MOVED_IN_SCAIDRIVE, new + "/", from_path=old + "/")
                     for new, old in sorted(_respelled_folders(plan).items())]
    plan.actions += [Action(ChangeKind.RELABELED, p, index[p], target_etag=target.get(p))
                     for p in plan.relabels]
    _add_folders(plan, decide_folders(index, source, target), source, target, source_names)
    return plan


_FOLDER_STEP = {ChangeKind.CREATED: Step.PULL, ChangeKind.PUSHED: Step.PUSH,
                ChangeKind.DELETED: Step.DELETE_TARGET,
                ChangeKind.DELETED_IN_SCAIDRIVE: Step.DELETE_SOURCE}


def _add_folders(plan: TwoWayPlan, folders: FolderPlan, source: Listing,
                 target: Mapping[str, str], check: NameCheck) -> None:
    """The empty folders' steps (`shared.sync.folders`), after the files' mass-delete hold:
    they only ever remove an empty folder, so they count toward no hold. A folder ScaiDrive
    made whose name the source cannot hold is a failure, as a file's would be; an empty one
    ScaiDrive renamed by case only is renamed at the source (`_respell_empty_folders`)."""
    _respell_empty_folders(plan, folders, target)
    pushed = [a.path.rstrip("/") for a in folders.actions if a.kind is ChangeKind.PUSHED]
    problems = _name_problems(pushed, source, check)
    for action in folders.actions:
        if action.path.rstrip("/") in problems:
            plan.unwritable[action.path] = problems[action.path.rstrip("/")]
        else:
            plan.steps.append((_FOLDER_STEP[action.kind], action.path))
            plan.actions.append(action)
    plan.steps += [(Step.RECORD, p) for p in folders.recorded]
    plan.steps += [(Step.FORGET, p) for p in folders.forgotten]
    plan.deletes_withheld += folders.withheld
    plan.unchanged += folders.unchanged


def _respell_empty_folders(plan: TwoWayPlan, folders: FolderPlan,
                           target: Mapping[str, str]) -> None:
    """An empty folder ScaiDrive renamed by case only (its marker gone under the old spelling,
    one under the new): one rename at the source, not a removal beside a creation that would
    collide with it. Every level whose spelling changed is renamed by its last name, as for a
    folder of files (`_respelled_folders`), if ScaiDrive holds nothing under its old spelling.
    Taken out of `folders.actions`; the respelled levels are added to the plan's actions."""
    removed = {a.path.casefold(): a.path for a in folders.actions
               if a.kind is ChangeKind.DELETED_IN_SCAIDRIVE}
    pairs = {a.path: removed[a.path.casefold()] for a in folders.actions
             if a.kind is ChangeKind.PUSHED and a.path.casefold() in removed}
    if not pairs:
        return
    held = _folders_of(target)
    taken = {a.path for a in plan.actions if a.kind is ChangeKind.MOVED_IN_SCAIDRIVE}
    paired: set[str] = set()
    for new, old in sorted(pairs.items()):
        levels = _folder_respellings(old, new)
        if any(was in held for was in levels.values()):
            continue  # ScaiDrive holds the old spelling too: a collision, as before
        paired |= {new, old}
        plan.steps.append((Step.MOVE_SOURCE, new))
        plan.moves[new] = old
        for now, was in sorted(levels.items()):
            if now + "/" not in taken:
                taken.add(now + "/")
                plan.actions.append(Action(ChangeKind.MOVED_IN_SCAIDRIVE, now + "/",
                                           from_path=was + "/"))
    folders.actions = [a for a in folders.actions if a.path not in paired]


def _unchanged(plan: TwoWayPlan, path: str, known: IndexRecord | None,
               identity_version: int) -> None:
    """Same on both sides: nothing to do, unless its labels come from an older mapping."""
    if known is not None and known.identity_version != identity_version:
        plan.relabels.append(path)
    else:
        plan.unchanged += 1


def _pair_renames(plan: TwoWayPlan, index: Mapping[str, IndexRecord], source: Listing,
                  target: Mapping[str, str]) -> None:
    """A deletion and a creation of the same file on one side become one move on the other
    (`renames`): the old path's delete step and the new path's copy step make one MOVE_* step
    at the new path. Only steps the table already decided are paired: a path in conflict, a
    deletion withheld (listing incomplete there) or a name the source cannot hold never is."""
    def paths(kind: Step) -> list[str]:
        return [p for s, p in plan.steps if s is kind and (kind in _GONE or p not in index)]

    at_source = renames.at_source(paths(Step.DELETE_TARGET), paths(Step.PULL), index,
                                  source.entries)
    in_scaidrive = renames.in_scaidrive(paths(Step.DELETE_SOURCE), paths(Step.PUSH), index,
                                        target)
    plan.moves = at_source | in_scaidrive
    old = set(plan.moves.values())
    plan.steps[:] = [(_MOVE_OF[s] if p in plan.moves and s in _MOVE_OF else s, p)
                     for s, p in plan.steps if not (s in _GONE and p in old)]


_GONE = (Step.DELETE_TARGET, Step.DELETE_SOURCE)  # the old path of a move
_MOVE_OF = {Step.PULL: Step.MOVE_TARGET, Step.PUSH: Step.MOVE_SOURCE}  # its new path


def _hold_mass_deletes(plan: TwoWayPlan, n_source: int, n_target: int,
                       share: float, approved: frozenset[str]) -> None:
    """A run that would delete more than `share` of either side deletes nothing on that side.
    The files to delete are still listed on the side they would go from."""
    for kind, side_total in ((Step.DELETE_SOURCE, n_source), (Step.DELETE_TARGET, n_target)):
        paths = [p for s, p in plan.steps if s is kind]
        _, held = hold_mass_deletes(paths, side_total, share, approved)
        if held:
            plan.steps[:] = [s for s in plan.steps if not (s[0] is kind and s[1] in held)]
            plan.deletes_held.extend((kind, p) for p in held)


def _drop_unwritable(plan: TwoWayPlan, source: Listing, check: NameCheck,
                     spared: frozenset[str] = frozenset()) -> None:
    """New ScaiDrive names the source cannot hold (its rules, or only a case apart from a
    listed name other than the `spared`) leave the plan as per-file failures: never renamed
    behind the user's back, never lost (the object stays in ScaiDrive)."""
    new = [p for s, p in plan.steps if s is Step.PUSH and p not in source.entries]
    problems = _name_problems(new, source, check, spared)
    plan.steps[:] = [s for s in plan.steps if not (s[0] is Step.PUSH and s[1] in problems)]
    plan.unwritable = dict(sorted({**plan.unwritable, **problems}.items()))


def _renamed_by_case(plan: TwoWayPlan, index: Mapping[str, IndexRecord],
                     target: Mapping[str, str]) -> frozenset[str]:
    """Listed files ScaiDrive renamed by case only (gone there, the same object under the new
    spelling): the new name is that very file, no collision, once the pair is one move (a
    rename at the source; as a delete beside a push it would collide, and `_drop_unwritable`
    runs again after the pairing). Where a folder's spelling changed too, only if ScaiDrive
    holds nothing under the old spelling any more: the folder is renamed by case at the source
    (`_respelled_folders`); a folder ScaiDrive holds under both spellings still collides."""
    deleted = {p.casefold(): p for s, p in plan.steps if s is Step.DELETE_SOURCE}
    spared = set()
    folders: set[str] | None = None  # ScaiDrive's folders as spelled, read once if needed
    for step, path in plan.steps:
        old = deleted.get(path.casefold()) if step is Step.PUSH else None
        if old is None or old == path or index[old].etag != target.get(path):
            continue
        respelled = _folder_respellings(old, path)
        if respelled:
            folders = _folders_of(target) if folders is None else folders
            if any(was in folders for was in respelled.values()):
                continue
        spared.add(old)
    return frozenset(spared)


def _folder_respellings(old: str, new: str) -> dict[str, str]:
    """The folders of `old` that `new` (the same path but for case) spells otherwise: new
    spelling -> old spelling, each the path down to that folder."""
    was, now = old.split("/")[:-1], new.split("/")[:-1]
    return {"/".join(now[:i + 1]): "/".join(was[:i + 1])
            for i in range(len(now)) if now[i] != was[i]}


def _folders_of(paths: Mapping[str, object]) -> set[str]:
    """Every folder the paths lie in (a marker "x/" is folder "x"), as spelled."""
    out: set[str] = set()
    for path in paths:
        parts = path.split("/")[:-1]  # "x/" -> ["x"]; "a/b.txt" -> ["a"]
        out.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def _respelled_folders(plan: TwoWayPlan) -> dict[str, str]:
    """Folders ScaiDrive renamed by case, as the moves of the files in them show (the files'
    own renames at a server that ignores case leave them in the folder as spelled there):
    new spelling -> old, each renamed at the source by its last name (in any order)."""
    out: dict[str, str] = {}
    for step, path in plan.steps:
        old = plan.moves.get(path) if step is Step.MOVE_SOURCE else None
        if old is not None and old != path and old.casefold() == path.casefold():
            out.update(_folder_respellings(old, path))
    return out


def _name_problems(new: list[str], source: Listing, check: NameCheck,
                   spared: frozenset[str] = frozenset()) -> dict[str, SyncError]:
    """New names the source cannot hold: its rules, or a case apart from a listed name."""
    listed = [p for p in (*source.entries, *(source.empty_folders or ())) if p not in spared]
    problems: dict[str, SyncError] = dict(case_collisions(new, listed))
    for path in new:
        try:
            check(path)
        except SyncError as exc:
            problems.setdefault(path, exc)
    return problems


def _action(step: Step, path: str, old: str | None, index: Mapping[str, IndexRecord],
            source: Listing, target: Mapping[str, str]) -> Action:
    """The change to publish. A move's `target_etag` is the object it moves (ScaiDrive's old
    one, or the renamed one), its `version` the source's file it moves (new, or old path)."""
    if step is Step.PULL:
        kind = ChangeKind.MODIFIED if path in index else ChangeKind.CREATED
    else:
        kind = _KIND[step]
    if step is Step.MOVE_TARGET:
        return Action(kind, path, source.entries[path], from_path=old,
                      target_etag=target.get(old or ""))
    if step is Step.MOVE_SOURCE:
        return Action(kind, path, source.entries[old or ""], from_path=old,
                      target_etag=target.get(path))
    return Action(kind, path, source.entries.get(path), target_etag=target.get(path))
