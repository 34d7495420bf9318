"""The one-way decision: index (what the bucket holds, and the source version it came from) +
source listing + bucket sizes -> actions.

Pure and synchronous: no I/O, so every case is a table row in tests/unit/test_reconcile.py. It
is made for a listing read a chunk at a time, as the streaming scan reads it from Redis
(services/scanner/one_way_scan.py), and `reconcile` is the same calls over one chunk:

- `OneWayDecision.chunk`: listed files against their index records and bucket sizes:
  unchanged, modified, repaired (missing or of the wrong size in the bucket), rechecked
  (unchanged, but read within a tick of its last write: `racily_clean`), relabeled
  (unchanged, but labelled under an older identity mapping); a path the index does not hold
  waits, it may be a move, unless no move is possible (then it is created at once);
- `OneWayDecision.finish`: the indexed paths no listed chunk held: moves (same file id and
  content at a waiting new path), deletions, deletions withheld (only a listing complete for the
  path deletes it: a folder we could not read, or a walk cut short, deletes nothing) and held
  (more than the share allowed, unless approved: `rules.hold_mass_deletes`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.contracts import ChangeKind
from shared.sync.model import (
    IndexRecord,
    Listing,
    PrincipalCheck,
    SourceEntry,
    Versioned,
    labels_outdated,
    racily_clean,
    same_content,
)
from shared.sync.rules import (
    Action,
    MoveKey,
    deletable,
    hold_mass_deletes,
    move_key,
    under,
    unreadable,
)

__all__ = ["Action", "OneWayDecision", "Plan", "reconcile", "same_content"]


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    unchanged: int = 0
    deletes_withheld: list[str] = field(default_factory=list)
    deletes_held: list[str] = field(default_factory=list)  # too many: waiting for an admin

    def of(self, kind: ChangeKind) -> list[Action]:
        return [a for a in self.actions if a.kind is kind]


def reconcile(index: Mapping[str, IndexRecord], listing: Listing,
              target: Mapping[str, int] | None = None, max_delete_share: float = 1.0,
              approved_deletes: frozenset[str] = frozenset(),
              identity_version: int = 1, users_imported: PrincipalCheck | None = None) -> Plan:
    """The whole tree as one chunk. `target` maps path -> object size in the bucket (None:
    unknown, the index is trusted). Deletions beyond `max_delete_share` of the indexed files are
    held (`deletes_held`), except those an admin approved. Files whose labels are outdated
    (`labels_outdated`) are relabeled if otherwise unchanged."""
    decision = OneWayDecision(len(index), listing, identity_version, users_imported)
    listed = decision.chunk([listing.entries[p] for p in sorted(listing.entries)], index, target)
    vanished = {p: r for p, r in index.items() if p not in listing.entries}
    plan = decision.finish(vanished, target, max_delete_share, approved_deletes)
    plan.actions[:0] = listed
    return plan


class OneWayDecision:
    """One scan's one-way decision, fed a chunk of the listing at a time (no I/O: the caller
    reads the chunks, their records and sizes, and publishes what comes back). It holds the new
    paths that may be moves until `finish`, and the counts."""

    def __init__(self, n_indexed: int, listing: Listing, identity_version: int = 1,
                 users_imported: PrincipalCheck | None = None):
        """`listing`: its failures and completeness (its entries come through `chunk`);
        `identity_version`, `users_imported`: as `labels_outdated` takes them."""
        self.n_indexed = n_indexed
        self.identity_version, self.users_imported = identity_version, users_imported
        self.complete = listing.complete
        self.unreadable = unreadable(listing.failures)
        # A new path can be a move only if something indexed can have vanished.
        self.may_move = n_indexed > 0 and listing.complete
        self.waiting: list[SourceEntry] = []  # new paths, until the vanished ones are known
        self.found = 0  # listed paths the index holds
        self.unchanged = 0

    @property
    def all_found(self) -> bool:
        """Every indexed path was listed: nothing vanished (no need to look for any)."""
        return self.found >= self.n_indexed

    def chunk(self, entries: Iterable[SourceEntry], records: Mapping[str, IndexRecord],
              sizes: Mapping[str, int] | None) -> list[Action]:
        """The actions for these listed files, given the index records and bucket sizes of
        (at least) their paths."""
        actions: list[Action] = []
        for entry in entries:
            known = records.get(entry.path)
            if known is not None:
                self.found += 1
                action = self._known(entry, known, sizes)
            elif self.may_move:
                self.waiting.append(entry)
                continue
            else:
                action = Action(ChangeKind.CREATED, entry.path, entry)
            if action is None:
                self.unchanged += 1
            else:
                actions.append(action)
        return actions

    def _known(self, entry: SourceEntry, known: IndexRecord,
               sizes: Mapping[str, int] | None) -> Action | None:
        path = entry.path
        if not same_content(entry, known):
            return Action(ChangeKind.MODIFIED, path, entry)
        if sizes is not None and sizes.get(path) != known.size:
            return Action(ChangeKind.REPAIRED, path, entry)
        if labels_outdated(known, self.identity_version, self.users_imported):
            # New owner, same bytes (a racily clean one is rechecked by the next run: the
            # relabel keeps its read time).
            return Action(ChangeKind.RELABELED, path, known)
        if racily_clean(known):
            return Action(ChangeKind.RECHECKED, path, entry)  # compare the bytes
        return None

    def finish(self, vanished: Mapping[str, Versioned], sizes: Mapping[str, int] | None,
               max_delete_share: float = 1.0,
               approved: frozenset[str] = frozenset()) -> Plan:
        """The waiting new paths and the `vanished` index records (indexed, not listed), with
        the bucket sizes of (at least) the vanished paths: moves, creations, deletions."""
        plan = Plan(unchanged=self.unchanged)
        plan.actions, moved = self._place_waiting(vanished, sizes)
        withheld: list[str] = []
        deletes: list[str] = []
        for path in sorted(p for p in vanished if p not in moved):
            (deletes if deletable(path, self.complete, self.unreadable) else withheld).append(path)
        deletes, plan.deletes_held = hold_mass_deletes(deletes, self.n_indexed,
                                                       max_delete_share, approved)
        plan.actions += [Action(ChangeKind.DELETED, path) for path in deletes]
        plan.deletes_withheld = withheld
        return plan

    def _place_waiting(self, vanished: Mapping[str, Versioned],
                       sizes: Mapping[str, int] | None) -> tuple[list[Action], set[str]]:
        """(moves and creations of the waiting new paths, the old paths moved). A move needs
        its old object in the bucket, of the right size (else the file is sent again)."""
        movable = self._move_candidates(vanished)
        actions: list[Action] = []
        moved: set[str] = set()
        for entry in self.waiting:
            old = movable.pop(move_key(entry), None)
            if old is not None and (sizes is None or sizes.get(old) == entry.size):
                actions.append(Action(ChangeKind.MOVED, entry.path, entry, from_path=old))
                moved.add(old)
            else:
                actions.append(Action(ChangeKind.CREATED, entry.path, entry))
        self.waiting = []
        return actions, moved

    def _move_candidates(self, vanished: Mapping[str, Versioned]) -> dict[MoveKey, str]:
        """Vanished files that can be matched by file id (and unchanged content) at a new
        path: none from a walk cut short or under a folder that could not be read."""
        out: dict[MoveKey, str] = {}
        if not self.complete:
            return out
        for path, known in vanished.items():
            if known.file_id and not under(path, self.unreadable):
                out.setdefault(move_key(known), path)
        return out

