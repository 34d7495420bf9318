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

def match_email(mail: str | None, users: list[User]) -> User | None:
    if not mail:
        return None
    wanted = mail.strip().casefold()
    found = [u for u in users if u.email and u.email.casefold() == wanted]
    return found[0] if len(found) == 1 else None


def match_name(name: str | None, users: list[User], threshold: float,
               margin: float) -> tuple[User | None, float | None]:
    """Best fuzzy match of a display name, with its score. Two candidates within `margin` of
    each other is ambiguity: no match (guessing the wrong owner is worse than none)."""
    if not name or not users:
        return None, None
    named = [u for u in users if u.display_name]
    best = process.extract(name, [u.display_name for u in named],
                           scorer=fuzz.token_sort_ratio, limit=2)
    if not best or best[0][1] < threshold:
        return None, best[0][1] if best else None
    if len(best) > 1 and best[0][1] - best[1][1] < margin:
        return None, best[0][1]
    return named[best[0][2]], best[0][1]


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

