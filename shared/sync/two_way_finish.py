"""The run-wide part of the two-way decision (`TwoWayDecision.finish`), over the paths the
decision kept (`Seen`): the run's deletions, the new names ScaiDrive pushes to the source, and
the new source files that may be moves. Every other path was decided on its own as it came.

In order: new ScaiDrive names the source cannot hold are set aside (its rules, or a case apart
from a name the source lists: `CaseSpellings`), except a file ScaiDrive renamed by case only;
a deletion and a creation of the same file on one side become one move (`renames`); deletions
beyond the share allowed on either side are held (`rules.hold_mass_deletes`); folders renamed
by case are renamed at the source; then the empty folders' steps (`folders`), which count
toward no hold. Pure: the standard library and the pure core only.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.contracts import ChangeKind
from shared.errors import SyncError
from shared.sync import renames
from shared.sync.folders import FolderPlan
from shared.sync.keys import CaseSpellings
from shared.sync.rules import Action, hold_mass_deletes
from shared.sync.two_way_plan import NameCheck, Seen, Step, TwoWayPlan, action


@dataclass(frozen=True)
class RunWide:
    """What the run-wide steps need besides the kept paths: how the names that matter are
    spelled at the source (`spellings`) and in ScaiDrive (`target_folders`, the folders as
    spelled there whose names a kept path shares), each side's file total, the hold's share
    and the approvals, and the source's name rules."""

    spellings: CaseSpellings
    target_folders: set[str]
    n_source: int
    n_target: int
    share: float
    approved: frozenset[str]
    names: NameCheck


def finish_files(plan: TwoWayPlan, seen: dict[str, Seen], run: RunWide) -> None:
    """The kept files' steps and actions, in path order, into `plan`."""
    plan.steps = [(s.step, path) for path, s in sorted(seen.items())]
    renamed_by_case = _renamed_by_case(plan, seen, run.target_folders)
    _drop_unwritable(plan, run, renamed_by_case)
    _pair_renames(plan, seen)
    if renamed_by_case:  # a case-only rename left unpaired collides after all
        _drop_unwritable(plan, run)
    _hold_mass_deletes(plan, run)
    for step, path in plan.steps:
        old = plan.moves.get(path)
        plan.actions.append(action(step, path, seen[path],
                                   None if old is None else (old, seen[old])))
    plan.actions += [Action(ChangeKind.MOVED_IN_SCAIDRIVE, new + "/", from_path=old + "/")
                     for new, old in sorted(_respelled_folders(plan).items())]


_FOLDER_STEP = {ChangeKind.CREATED: Step.PULL, ChangeKind.PUSHED: Step.PUSH,
                ChangeKind.DELETED: Step.DELETE_TARGET,
                ChangeKind.DELETED_IN_SCAIDRIVE: Step.DELETE_SOURCE}


def add_folders(plan: TwoWayPlan, folders: FolderPlan, run: RunWide) -> None:
    """The empty folders' steps (`shared.sync.folders`), after the files' mass-delete hold:
    they only ever remove an empty folder, so they count toward no hold. A folder ScaiDrive
    made whose name the source cannot hold is a failure, as a file's would be; an empty one
    ScaiDrive renamed by case only is renamed at the source (`_respell_empty_folders`)."""
    _respell_empty_folders(plan, folders, run.target_folders)
    pushed = [a.path.rstrip("/") for a in folders.actions if a.kind is ChangeKind.PUSHED]
    problems = _name_problems(pushed, run)
    for folder_action in folders.actions:
        if folder_action.path.rstrip("/") in problems:
            plan.unwritable[folder_action.path] = problems[folder_action.path.rstrip("/")]
        else:
            plan.steps.append((_FOLDER_STEP[folder_action.kind], folder_action.path))
            plan.actions.append(folder_action)
    plan.steps += [(Step.RECORD, p) for p in folders.recorded]
    plan.steps += [(Step.FORGET, p) for p in folders.forgotten]
    plan.deletes_withheld += folders.withheld
    plan.unchanged += folders.unchanged


def _respell_empty_folders(plan: TwoWayPlan, folders: FolderPlan, held: set[str]) -> None:
    """An empty folder ScaiDrive renamed by case only (its marker gone under the old spelling,
    one under the new): one rename at the source, not a removal beside a creation that would
    collide with it. Every level whose spelling changed is renamed by its last name, as for a
    folder of files (`_respelled_folders`), if ScaiDrive holds nothing under its old spelling
    (`held`). Taken out of `folders.actions`; the respelled levels are added to the actions."""
    removed = {a.path.casefold(): a.path for a in folders.actions
               if a.kind is ChangeKind.DELETED_IN_SCAIDRIVE}
    pairs = {a.path: removed[a.path.casefold()] for a in folders.actions
             if a.kind is ChangeKind.PUSHED and a.path.casefold() in removed}
    if not pairs:
        return
    taken = {a.path for a in plan.actions if a.kind is ChangeKind.MOVED_IN_SCAIDRIVE}
    paired: set[str] = set()
    for new, old in sorted(pairs.items()):
        levels = folder_respellings(old, new)
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


def _pair_renames(plan: TwoWayPlan, seen: dict[str, Seen]) -> None:
    """A deletion and a creation of the same file on one side become one move on the other
    (`renames`): the old path's delete step and the new path's copy step make one MOVE_* step
    at the new path. Only steps the table already decided are paired: a path in conflict, a
    deletion withheld (listing incomplete there) or a name the source cannot hold never is."""
    def paths(kind: Step) -> list[str]:
        return [p for s, p in plan.steps if s is kind and (kind in _GONE or seen[p].known is None)]

    index = {p: s.known for p, s in seen.items() if s.known is not None}
    entries = {p: s.entry for p, s in seen.items() if s.entry is not None}
    etags = {p: s.etag for p, s in seen.items() if s.etag is not None}
    at_source = renames.at_source(paths(Step.DELETE_TARGET), paths(Step.PULL), index, entries)
    in_scaidrive = renames.in_scaidrive(paths(Step.DELETE_SOURCE), paths(Step.PUSH), index,
                                        etags)
    plan.moves = at_source | in_scaidrive
    old = set(plan.moves.values())
    plan.steps[:] = [(_MOVE_OF[s] if p in plan.moves and s in _MOVE_OF else s, p)
                     for s, p in plan.steps if not (s in _GONE and p in old)]


_GONE = (Step.DELETE_TARGET, Step.DELETE_SOURCE)  # the old path of a move
_MOVE_OF = {Step.PULL: Step.MOVE_TARGET, Step.PUSH: Step.MOVE_SOURCE}  # its new path


def _hold_mass_deletes(plan: TwoWayPlan, run: RunWide) -> None:
    """A run that would delete more than `share` of either side deletes nothing on that side.
    The files to delete are still listed on the side they would go from."""
    for kind, side_total in ((Step.DELETE_SOURCE, run.n_source),
                             (Step.DELETE_TARGET, run.n_target)):
        paths = [p for s, p in plan.steps if s is kind]
        _, held = hold_mass_deletes(paths, side_total, run.share, run.approved)
        if held:
            plan.steps[:] = [s for s in plan.steps if not (s[0] is kind and s[1] in held)]
            plan.deletes_held.extend((kind, p) for p in held)


def _drop_unwritable(plan: TwoWayPlan, run: RunWide,
                     spared: frozenset[str] = frozenset()) -> None:
    """New ScaiDrive names the source cannot hold (its rules, or only a case apart from a
    listed name other than the `spared`) leave the plan as per-file failures: never renamed
    behind the user's back, never lost (the object stays in ScaiDrive). The pushes kept are
    of paths the source does not list."""
    new = [p for s, p in plan.steps if s is Step.PUSH]
    problems = _name_problems(new, run, spared)
    plan.steps[:] = [s for s in plan.steps if not (s[0] is Step.PUSH and s[1] in problems)]
    plan.unwritable = dict(sorted({**plan.unwritable, **problems}.items()))


def _renamed_by_case(plan: TwoWayPlan, seen: dict[str, Seen],
                     folders: set[str]) -> frozenset[str]:
    """Listed files ScaiDrive renamed by case only (gone there, the same object under the new
    spelling): the new name is that very file, no collision, once the pair is one move (a
    rename at the source; as a delete beside a push it would collide, and `_drop_unwritable`
    runs again after the pairing). Where a folder's spelling changed too, only if ScaiDrive
    holds nothing under the old spelling any more (`folders`: ScaiDrive's, as spelled): the
    folder is renamed by case at the source (`_respelled_folders`); a folder ScaiDrive holds
    under both spellings still collides."""
    deleted = {p.casefold(): p for s, p in plan.steps if s is Step.DELETE_SOURCE}
    spared = set()
    for step, path in plan.steps:
        old = deleted.get(path.casefold()) if step is Step.PUSH else None
        known = None if old is None else seen[old].known
        if old is None or old == path or known is None or known.etag != seen[path].etag:
            continue
        if any(was in folders for was in folder_respellings(old, path).values()):
            continue
        spared.add(old)
    return frozenset(spared)


def folder_respellings(old: str, new: str) -> dict[str, str]:
    """The folders of `old` that `new` (the same path but for case) spells otherwise: new
    spelling -> old spelling, each the path down to that folder."""
    was, now = old.split("/")[:-1], new.split("/")[:-1]
    return {"/".join(now[:i + 1]): "/".join(was[:i + 1])
            for i in range(len(now)) if now[i] != was[i]}


def folders_of(path: str) -> list[str]:
    """Every folder the path lies in (a marker "x/" is folder "x"), as spelled."""
    parts = path.split("/")[:-1]  # "x/" -> ["x"]; "a/b.txt" -> ["a"]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _respelled_folders(plan: TwoWayPlan) -> dict[str, str]:
    """Folders ScaiDrive renamed by case, as the moves of the files in them show (the files'
    own renames at a server that ignores case leave them in the folder as spelled there):
    new spelling -> old, each renamed at the source by its last name (in any order)."""
    out: dict[str, str] = {}
    for step, path in plan.steps:
        old = plan.moves.get(path) if step is Step.MOVE_SOURCE else None
        if old is not None and old != path and old.casefold() == path.casefold():
            out.update(folder_respellings(old, path))
    return out


def _name_problems(new: list[str], run: RunWide,
                   spared: Iterable[str] = ()) -> dict[str, SyncError]:
    """New names the source cannot hold: its rules, or a case apart from a listed name."""
    problems: dict[str, SyncError] = dict(run.spellings.collisions(new, spared))
    for path in new:
        try:
            run.names(path)
        except SyncError as exc:
            problems.setdefault(path, exc)
    return problems
