"""The chaos run's ledger: every version of a file the test ever wrote, and the verdict on it.

Every write the test makes (either side: the Samba share's folder on disk, or the bucket
through the S3 API) carries content no other write has (a unique token, or random bytes), so a
version *is* its sha256. The ledger records, in order:

- `write(side, path, data)`: a version the test wrote (a create, an edit of the same size or
  another size, and the initial tree);
- `displaced(side, path, digest)`: what one of the test's own operations removed from a side:
  the exact content an overwrite replaced or a delete took away. Each side's operation is
  atomic and learns exactly what it displaced (SMB: `renameat2(RENAME_EXCHANGE)` swaps the new
  file in and hands back the old one, a delete renames the file out first, a same-size edit
  reads and rewrites through one descriptor that must still be linked afterwards; S3: the put
  or delete is conditional on the etag of the object just read, `If-Match`);
- `decision(...)`: a conflict resolved by the test, with the content each side held when the
  decision was sent (read while the test makes no other change; the path is held by the open
  conflict, so nothing else writes it) and whether those are the versions the conflict was
  detected with (source size + mtime, ScaiDrive etag = the md5 of the bytes);
- `observed(where, tree)`: snapshots of both sides between rounds (history for the report).

After the run has quiesced, each written version must be accounted for by one rule:

1. **kept**: its digest is the content of some path in the final tree (both sides are then
   identical, so "some path" covers renames and `keep_both` conflict copies);
2. **displaced**: one of the test's own operations replaced or deleted exactly this content on
   one side (a user's overwrite or delete: the propagation of that removal is the sync's job);
3. **loser**: it was the losing side's content of a resolution that was *applied* (the record
   reads `resolved` with `applied_at`), and it was the version the conflict was detected with
   (a decision applied over a newer version is no excuse: that version stays unaccounted).

Anything else is a **lost edit**, reported with its history (every ledger event on its digest
and on the paths it was written to). Separately, every file seen on either side, in a snapshot
or displaced by an operation, must hold content the test wrote: anything else is damage (a
truncated or partial file, or a mix of two versions), reported with where it was seen. Temp
files of the service's atomic writes (`.~scaidrive-*.tmp`, hidden and never synced) are not
part of either tree; they are counted, not judged."""
from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Written:
    digest: str
    side: str  # "smb" | "s3"
    path: str
    round: int
    op: str
    at: float


@dataclass(frozen=True)
class Decision:
    """A resolution the test sent, with what each side held when it was sent."""

    conflict_id: str
    path: str
    winner: str  # "source" | "scaidrive" | "keep_both"
    round: int
    source_digest: str | None
    scaidrive_digest: str | None
    as_detected: bool  # both snapshots are the versions the conflict was detected with

    def loser(self) -> str | None:
        if not self.as_detected:
            return None
        return {"source": self.scaidrive_digest, "scaidrive": self.source_digest}.get(
            self.winner)


@dataclass
class Verdict:
    lost: list[str]  # a line per lost version, with its history
    damaged: list[str]  # files holding content the test never wrote
    kept: int = 0
    displaced: int = 0
    losers: int = 0

    @property
    def ok(self) -> bool:
        return not self.lost and not self.damaged


@dataclass
class Ledger:
    written: dict[str, Written] = field(default_factory=dict)
    removed: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    decisions: list[Decision] = field(default_factory=list)
    unknown_seen: list[str] = field(default_factory=list)
    events: list[tuple[float, str, str, str]] = field(default_factory=list)  # t, digest, path
    seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    round: int = 0

    # --- recording -----------------------------------------------------------------------

    def write(self, side: str, path: str, data: bytes, op: str) -> str:
        d = digest(data)
        assert d not in self.written, f"the test wrote the same content twice ({path})"
        self.written[d] = Written(d, side, path, self.round, op, time.time())
        self._event(d, path, f"r{self.round} {side} {op} -> {path} ({len(data)} B)")
        return d

    def displaced(self, side: str, path: str, d: str, op: str) -> None:
        self.removed[d].append(f"r{self.round} {side} {op} at {path}")
        self._event(d, path, f"r{self.round} {side} {op} displaced it at {path}")
        self._check_known(d, f"{side}:{path} (displaced by {op}, round {self.round})")

    def decision(self, dec: Decision) -> None:
        self.decisions.append(dec)
        for d in (dec.source_digest, dec.scaidrive_digest):
            if d:
                self._event(d, dec.path, f"r{dec.round} conflict {dec.conflict_id[:8]} at "
                            f"{dec.path}: winner {dec.winner} (as detected: {dec.as_detected})")

    def observed(self, where: str, tree: dict[str, str]) -> None:
        """A snapshot of one side: a digest seen somewhere new goes into its history."""
        for path, d in tree.items():
            self._check_known(d, f"{where}:{path} (snapshot, round {self.round})")
            if f"{where}:{path}" not in self.seen[d]:
                self.seen[d].add(f"{where}:{path}")
                self._event(d, path, f"r{self.round} seen on {where} at {path}")

    def note(self, path: str, text: str) -> None:
        self._event("", path, f"r{self.round} {text}")

    def _check_known(self, d: str, where: str) -> None:
        if d not in self.written:
            self.unknown_seen.append(f"{where}: sha256 {d[:16]} was never written")

    def _event(self, d: str, path: str, text: str) -> None:
        self.events.append((time.time(), d, path, text))

    # --- the verdict -----------------------------------------------------------------------

    def verdict(self, final: dict[str, str], applied: set[str]) -> Verdict:
        """`final`: path -> digest of the (identical) final trees; `applied`: ids of the
        conflicts whose resolution was applied."""
        in_final = set(final.values())
        losers = {d.loser() for d in self.decisions if d.conflict_id in applied} - {None}
        v = Verdict(lost=[], damaged=list(self.unknown_seen))
        v.damaged += [f"final:{p}: sha256 {d[:16]} was never written"
                      for p, d in sorted(final.items()) if d not in self.written]
        for d, w in self.written.items():
            if d in in_final:
                v.kept += 1
            elif d in self.removed:
                v.displaced += 1
            elif d in losers:
                v.losers += 1
            else:
                v.lost.append(self.history(w))
        return v

    def history(self, w: Written) -> str:
        """A lost version: what happened to it and on the paths it was written to."""
        lines = [f"LOST sha256 {w.digest[:16]}: written r{w.round} on {w.side} at {w.path} "
                 f"({w.op})"]
        for t, d, path, text in self.events:
            if d == w.digest or path == w.path:
                mark = "*" if d == w.digest else " "
                lines.append(f"   {mark} {time.strftime('%H:%M:%S', time.localtime(t))}"
                             f".{int(t * 1000) % 1000:03d} {text}")
        return "\n".join(lines)
