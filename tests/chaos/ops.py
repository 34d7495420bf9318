"""Seeded random operations on both sides of the connector: creates, same-size edits (in
place) and other edits, deletes, file renames and folder renames; some rounds touch the same
path on both sides at once (edit/edit, edit/delete, rename/edit...), which is how conflicts,
"a change wins over a delete" and renames racing edits come about. Names are lower case and
unique (a counter), so no two names differ only in case and no op aims at a name the other
side may be creating."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from tests.chaos.sides import S3Side, SmbSide

MIB = 1024 * 1024
KINDS = {"create": 3, "edit": 3, "edit_same_size": 3, "delete": 2, "rename": 2,
         "rename_folder": 1}
# The same path on both sides in one round: (smb's op, s3's op).
BOTH = [("edit", "edit"), ("edit", "edit"), ("edit_same_size", "edit"), ("edit", "edit_same_size"),
        ("edit_same_size", "edit_same_size"), ("edit", "delete"), ("delete", "edit"),
        ("rename", "edit"), ("edit", "rename"), ("delete", "delete")]


@dataclass(frozen=True)
class Op:
    side: str  # "smb" | "s3"
    kind: str
    path: str  # a file, or a folder for rename_folder
    to: str = ""  # a rename's new name

    def __str__(self) -> str:
        return f"{self.side} {self.kind} {self.path}" + (f" -> {self.to}" if self.to else "")


class Operations:
    def __init__(self, rng: random.Random, seed: int, smb: SmbSide, s3: S3Side):
        self.rng, self.seed = rng, seed
        self.sides: dict[str, SmbSide | S3Side] = {"smb": smb, "s3": s3}
        self.n = 0
        self.done: Counter[str] = Counter()  # kind -> applied
        self.void: Counter[str] = Counter()  # kind -> met a change meanwhile: nothing done

    # --- content and names ---------------------------------------------------------------------

    def content(self, size: int | None = None) -> bytes:
        """Bytes no other write of the run has: a header with a counter, then random bytes."""
        self.n += 1
        head = f"chaos seed={self.seed} version={self.n}\n".encode()
        if size is None:
            r = self.rng.random()
            size = self.rng.randint(48, 4096) if r < 0.7 else \
                self.rng.randint(4097, 256 * 1024) if r < 0.96 else self.rng.randint(
                    256 * 1024, 2 * MIB)
        if size < len(head) + 8:
            return self.rng.randbytes(size)
        return head + self.rng.randbytes(size - len(head))

    def _name(self) -> str:
        self.n += 1
        return f"f{self.n}" + self.rng.choice([".bin", ".txt", ".docx", ""])

    def fresh_path(self, files: list[str]) -> str:
        """A new name in an existing folder, the top, or a new folder (at most 3 deep)."""
        folders = sorted({p.rpartition("/")[0] for p in files} - {""})
        roll = self.rng.random()
        if roll < 0.2:
            return self._name()
        if roll < 0.35 or not folders:
            base = self.rng.choice(["", *[f for f in folders if f.count("/") < 2]])
            self.n += 1
            return f"{base}/d{self.n}/{self._name()}".lstrip("/")
        return f"{self.rng.choice(folders)}/{self._name()}"

    # --- planning ------------------------------------------------------------------------------

    def plan(self, smb: dict[str, str], s3: dict[str, str], count: int, both: int) -> list[Op]:
        """`both` paths changed on both sides (the two ops back to back, in either order, so
        neither reaches the other side first), and `count` single ops, in a shuffled order."""
        trees = {"smb": sorted(smb), "s3": sorted(s3)}
        used: set[str] = set()
        units = self._both(sorted(set(smb) & set(s3)), both, trees, used)
        for _ in range(count):
            side = self.rng.choice(["smb", "s3"])
            if (op := self._one(side, trees[side], used)) is not None:
                units.append([op])
        self.rng.shuffle(units)
        return [op for unit in units for op in unit]

    def _both(self, common: list[str], n: int, trees: dict[str, list[str]],
              used: set[str]) -> list[list[Op]]:
        units = []
        for path in self.rng.sample(common, min(n, len(common))):
            used.add(path)
            pair = []
            for side, kind in zip(("smb", "s3"), self.rng.choice(BOTH), strict=True):
                to = self.fresh_path(trees[side]) if kind == "rename" else ""
                pair.append(Op(side, kind, path, to))
            self.rng.shuffle(pair)
            units.append(pair)
        return units

    def _one(self, side: str, files: list[str], used: set[str]) -> Op | None:
        kind = self.rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        free = [p for p in files if p not in used]
        if kind == "create" or not free:
            return Op(side, "create", self.fresh_path(files))
        if kind == "rename_folder":
            return self._folder_rename(side, free, used)
        path = self.rng.choice(free)
        used.add(path)
        return Op(side, kind, path, self.fresh_path(files) if kind == "rename" else "")

    def _folder_rename(self, side: str, free: list[str], used: set[str]) -> Op | None:
        folders = sorted({p.rpartition("/")[0] for p in free} - {""})
        if not folders:
            return None
        folder = self.rng.choice(folders)
        inside = [p for p in free if p.startswith(folder + "/")]
        if any(p in used for p in inside):
            return None
        used.update(inside)
        self.n += 1
        parent = folder.rpartition("/")[0]
        return Op(side, "rename_folder", folder, f"{parent}/d{self.n}".lstrip("/"))

    # --- applying ------------------------------------------------------------------------------

    def apply(self, op: Op) -> bool:
        side = self.sides[op.side]
        if op.kind == "create":
            ok = side.create(op.path, self.content)
        elif op.kind in ("edit", "edit_same_size", "delete"):
            ok = getattr(side, op.kind)(op.path, *(() if op.kind == "delete" else
                                                   (self.content,)))
        elif op.kind == "rename_folder" and isinstance(side, S3Side):
            ok = side.rename_folder(op.path, op.to)
        else:
            ok = side.rename(op.path, op.to)
        (self.done if ok else self.void)[op.kind] += 1
        return ok
