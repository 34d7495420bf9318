"""Identity mapping rules, pure: the explicit table, email and fuzzy-name matching, SID forms.

And what a ScaiDrive user directory is. The platform owns its users; we only read them. Anything
that implements `UserDirectory` can stand behind the identity service: today the users imported
through `PUT /api/v1/users` (kept by the store: shared/store/users.py), tomorrow the platform's
own user API.
"""
from __future__ import annotations

import csv
import io
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz, process

SID = re.compile(r"^S-1-\d+(-\d+)+$")
TABLE_HEADER = ("smb-sid", "scaidrive-user-id")


class User(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    id: str = Field(min_length=1, max_length=200)
    # A shape check only: internal directories use domains like .local or .corp, which strict
    # validators (email-validator) refuse.
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    display_name: str = ""


class UserDirectory(Protocol):
    async def users(self) -> list[User]: ...

    async def get(self, user_id: str) -> User | None: ...


# --- the explicit table ------------------------------------------------------------------------

@dataclass(frozen=True)
class TableProblem:
    line: int
    message: str


def valid_principal(text: str) -> bool:
    """A table's first column: an SMB SID, or (SharePoint) the owner's e-mail claim."""
    return bool(SID.match(text)) or ("@" in text and " " not in text)


def parse_table(text: str | None, known_users: set[str] | None = None
                ) -> tuple[dict[str, str], list[TableProblem]]:
    """CSV `smb-sid,scaidrive-user-id` -> {sid: user id}, and every line that is wrong
    (including, when `known_users` is given, lines naming a user that does not exist)."""
    table: dict[str, str] = {}
    problems: list[TableProblem] = []
    try:
        rows = list(csv.reader(io.StringIO(text or "")))
    except csv.Error as exc:  # e.g. a field past the csv module's 128 KiB limit
        return {}, [TableProblem(1, f"not a readable CSV table: {exc}")]
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or (number == 1 and tuple(c.lower() for c in cells) == TABLE_HEADER):
            continue
        if len(cells) != 2 or not cells[1]:
            problems.append(TableProblem(number, "expected two columns: smb-sid,scaidrive-user-id"))
        elif not valid_principal(cells[0]):
            problems.append(TableProblem(number, f"{cells[0]!r} is not a SID (S-1-...) or e-mail"))
        elif cells[0] in table:
            problems.append(TableProblem(number, f"{cells[0]} is mapped twice"))
        elif known_users is not None and cells[1] not in known_users:
            problems.append(TableProblem(number, f"unknown ScaiDrive user {cells[1]!r}"))
        else:
            table[cells[0]] = cells[1]
    return table, problems


# --- matching ----------------------------------------------------------------------------------

class UserIndex:
    """ScaiDrive's users made ready for many lookups, once per import: by e-mail (casefolded;
    a mail two users share is nobody's) and by display name. A lookup by mail is then one dict
    read, not a pass over every user (2 ms a principal at 20,000 users)."""

    def __init__(self, users: Sequence[User]) -> None:
        by_email: dict[str, User | None] = {}
        for u in users:
            if u.email:
                key = u.email.casefold()
                by_email[key] = None if key in by_email else u
        self.by_email = by_email
        self.named = [u for u in users if u.display_name]
        self.names = [u.display_name for u in self.named]


def _indexed(users: Sequence[User] | UserIndex) -> UserIndex:
    return users if isinstance(users, UserIndex) else UserIndex(users)


def match_email(mail: str | None, users: Sequence[User] | UserIndex) -> User | None:
    if not mail:
        return None
    return _indexed(users).by_email.get(mail.strip().casefold())


def match_name(name: str | None, users: Sequence[User] | UserIndex, threshold: float,
               margin: float) -> tuple[User | None, float | None]:
    """Best fuzzy match of a display name, with its score. Two candidates within `margin` of
    each other is ambiguity: no match (guessing the wrong owner is worse than none)."""
    index = _indexed(users)
    if not name or not index.named:
        return None, None
    best = process.extract(name, index.names, scorer=fuzz.token_sort_ratio, limit=2)
    if not best or best[0][1] < threshold:
        return None, best[0][1] if best else None
    if len(best) > 1 and best[0][1] - best[1][1] < margin:
        return None, best[0][1]
    return index.named[best[0][2]], best[0][1]


# --- SIDs --------------------------------------------------------------------------------------

def sid_to_bytes(sid: str) -> bytes:
    """Active Directory's binary objectSid: revision, count, 48-bit authority, sub-authorities."""
    if not SID.match(sid):
        raise ValueError(f"not a SID: {sid!r}")
    parts = [int(p) for p in sid.split("-")[1:]]
    revision, authority, subs = parts[0], parts[1], parts[2:]
    return (struct.pack("<BB", revision, len(subs)) + authority.to_bytes(6, "big")
            + b"".join(struct.pack("<I", s) for s in subs))


def sid_from_bytes(raw: bytes) -> str:
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack(f"<{count}I", raw[8:8 + 4 * count])
    return "-".join(["S", str(revision), str(authority), *map(str, subs)])

