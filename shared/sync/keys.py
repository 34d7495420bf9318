"""Name rules: source paths -> object keys that can never escape their share or prefix.

Keys keep the source's bytes (no Unicode normalisation: `é` as NFC and NFD are two different
files on the source and stay two objects). Anything S3 or the platform cannot hold safely is a
per-file failure naming the cause, never a silent rename.
"""
from __future__ import annotations

import re
import urllib.parse
from collections import Counter
from collections.abc import Iterable

from shared.errors import EncodingIssue, InvalidName

MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def clean_prefix(prefix: str) -> str:
    """'' or 'a/b' (no leading/trailing slash), validated like a path."""
    prefix = prefix.strip("/")
    if prefix:
        check_path(prefix)
    return prefix


def check_path(path: str) -> None:
    """Raise InvalidName / EncodingIssue if `path` cannot be stored as an object key."""
    if not path or path.startswith("/"):
        raise InvalidName(f"empty or absolute path {path!r}", path)
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidName(f"path segment {segment!r} is not allowed", path)
        if "\\" in segment:
            raise InvalidName("backslash in a name", path)
        if _CONTROL.search(segment):
            raise InvalidName("control character in a name", path)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodingIssue("name is not valid Unicode (lone surrogate)", path) from None


def object_key(prefix: str, path: str) -> str:
    check_path(path)
    key = f"{prefix}/{path}" if prefix else path
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidName(f"path longer than the target's {MAX_KEY_BYTES}-byte key limit", path)
    return key


def path_of_key(prefix: str, key: str) -> str | None:
    """The relative path of an object key under `prefix`, None if it lies outside."""
    if not prefix:
        return key
    return key[len(prefix) + 1:] if key.startswith(prefix + "/") else None


def metadata_value(text: str) -> str:
    """S3 user metadata must be ASCII: percent-encode (reversibly) the original name. HTTP
    trims a header value's edges, so a name starting or ending with a space has its spaces
    encoded too (` lead.txt` would come back as `lead.txt`)."""
    quoted = urllib.parse.quote(text, safe="/ ")
    return quoted if quoted == quoted.strip(" ") else urllib.parse.quote(text, safe="/")


# --- names written back to a source (two-way) ---------------------------------------------

class NameCollision(InvalidName):
    """Two ScaiDrive names that the (case-insensitive) source would take for one file."""

    cause = "name_collision"


_WINDOWS_CHARS = set('"*:<>?\\|')
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                    *(f"lpt{i}" for i in range(1, 10))}


def check_smb_name(path: str) -> None:
    """What a Windows file server cannot hold (Samba may, Windows will not: refuse both)."""
    for part in path.split("/"):
        if _WINDOWS_CHARS & set(part) or _CONTROL.search(part):
            raise InvalidName(f"SMB names cannot hold {''.join(sorted(_WINDOWS_CHARS))} or "
                              f"control characters: {path!r}", path)
        if part != part.rstrip(". "):
            raise InvalidName(f"SMB names cannot end with a dot or a space: {path!r}", path)
        if part.split(".")[0].lower() in _WINDOWS_DEVICES:
            raise InvalidName(f"{part!r} is a reserved device name on Windows", path)


def _names(path: str) -> list[str]:
    """The path and every folder above it: "a/b/c" -> "a", "a/b", "a/b/c"."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


class CaseSpellings:
    """`case_collisions` fed the existing paths a chunk at a time: only the spellings of the
    names a pushed path could collide with are kept (memory follows the pushed paths, not the
    tree). `collisions` takes pushed paths among those given here."""

    def __init__(self, pushed: Iterable[str]):
        self.keys = {name.casefold() for path in pushed for name in _names(path)}
        self.spelled: dict[str, Counter[str]] = {}  # casefold -> spelling -> existing paths

    def add(self, existing: Iterable[str]) -> None:
        for path in existing:
            for name in _names(path):
                key = name.casefold()
                if key in self.keys:
                    self.spelled.setdefault(key, Counter())[name] += 1

    def collisions(self, pushed: list[str],
                   spared: Iterable[str] = ()) -> dict[str, NameCollision]:
        """Pushed paths that differ only in case from an existing file or folder (the
        `spared` existing paths aside) or from another pushed path."""
        counts = {key: Counter(c) for key, c in self.spelled.items()}
        for path in spared:
            for name in _names(path):
                if name.casefold() in counts:
                    counts[name.casefold()][name] -= 1
        spelled = {key: {name for name, n in c.items() if n > 0} for key, c in counts.items()}
        for path in pushed:
            for name in _names(path):
                spelled.setdefault(name.casefold(), set()).add(name)
        out = {}
        for path in pushed:
            for name in _names(path):
                others = spelled[name.casefold()] - {name}
                if others:
                    out[path] = NameCollision(
                        f"{path!r} differs only in case from {sorted(others)[0]!r}, which the "
                        "source cannot hold beside it", path)
                    break
        return out


def case_collisions(pushed: list[str], existing: Iterable[str]) -> dict[str, NameCollision]:
    """Pushed paths that differ only in case from another file or folder (SMB and SharePoint
    are both case-insensitive: `a.txt` would overwrite `A.txt`, `docs/x` would land in `Docs/`)."""
    spellings = CaseSpellings(pushed)
    spellings.add(existing)
    return spellings.collisions(pushed)


def conflict_name(path: str, conflict_id: str) -> str:
    """Where `keep_both` keeps ScaiDrive's version: beside the original, with a suffix that is
    the same for every retry of the same conflict (idempotent) and keeps the extension."""
    folder, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not stem:  # no extension, or a dot file
        stem, dot, ext = name, "", ""
    renamed = f"{stem} (ScaiDrive conflict {conflict_id[:8]}){dot}{ext}"
    return f"{folder}/{renamed}" if folder else renamed
