"""ScaiDrive users imported moments before a run own its files, against the real Redis.

The identity service reads the users again when an import raised their version (read with the
connector at each message's start, `Store.connector_for_owners`), and keeps its directory
answers, in-process and in Redis, per users' version. Before: a miss read the users again at
most once a second, and an answer (the system owner, for want of a user) stood in Redis for an
hour, so the files of an owner imported after a miss went to the system owner (found:
tests/e2e/test_sharepoint.py failed when it ran right after test_sharepoint_position.py).
The directory itself (LDAP) is stood in for: tests/e2e/test_identity.py asks a real slapd.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.identity import handlers
from services.identity.directory import DirectoryEntry
from services.identity.handlers import Identities
from shared.config.identity_mapping import User

CAROL_SID = "S-1-5-21-1-2-3-1107"


class UsersRead:
    """The store's users, counting the reads of the whole directory."""

    def __init__(self, users):
        self.stored, self.reads = users, 0

    async def users(self) -> list[User]:
        self.reads += 1
        return await self.stored.users()


def connector(strategy: str) -> SimpleNamespace:
    mapping = SimpleNamespace(system_owner="system", table=None, strategy=strategy,
                              ldap=object(), name_threshold=85, name_margin=5)
    return SimpleNamespace(id="c1", identity_version=1, identity_mapping=mapping,
                           ldap_password_enc=None)


@pytest.fixture
def identities(state, monkeypatch):
    asked: list[str] = []

    def lookup(cfg, password, sid):
        asked.append(sid)
        return DirectoryEntry("carol.white@corp.local", "Carol White", False)

    monkeypatch.setattr(handlers, "ldap_lookup", lookup)
    ids = Identities(SimpleNamespace(state=state, box=None))
    ids.directory = UsersRead(state.users)
    return ids, asked


async def users_version(state) -> int:
    return (await state.connector_for_owners("c1"))[2]


@pytest.mark.parametrize("strategy", ["name", "email"])
async def test_an_owner_imported_after_a_miss_owns_the_next_files(state, identities, strategy):
    ids, asked = identities
    c = connector(strategy)
    await state.users.put([User(id="u-alice", email="alice@corp.local", display_name="Alice")])
    before = await users_version(state)
    for _ in range(3):  # Carol is nobody in ScaiDrive yet: the answer is kept, not asked again
        owner = await ids.resolve(c, CAROL_SID, "r1", before)
        assert (owner.user_id, owner.method) == ("system", "system_owner")
    assert (asked, ids.directory.reads) == ([CAROL_SID], 1)

    await state.users.put([User(id="u-carol", email="carol.white@corp.local",
                                display_name="Carol White")])
    owner = await ids.resolve(c, CAROL_SID, "r2", await users_version(state))  # at once
    assert (owner.user_id, owner.method) == ("u-carol", strategy)
    assert (asked, ids.directory.reads) == ([CAROL_SID, CAROL_SID], 2)
    # A message read before the import still gets the answer of its time: nothing mixed up.
    assert (await ids.resolve(c, CAROL_SID, "r1", before)).user_id == "system"


async def test_a_library_owner_imported_after_a_miss_owns_the_next_files(state, identities):
    """SharePoint names the owner by e-mail: no directory, only ScaiDrive's users."""
    ids, asked = identities
    c = connector("email")
    before = await users_version(state)
    assert (await ids.resolve(c, "carol@contoso.com", "r1", before)).user_id == "system"
    await state.users.put([User(id="u-carol", email="carol@contoso.com")])
    owner = await ids.resolve(c, "carol@contoso.com", "r2", await users_version(state))
    assert (owner.user_id, owner.method) == ("u-carol", "email")
    assert await ids.resolve(c, "CAROL@contoso.com", "r3", await users_version(state)) == \
        owner.model_copy(update={"source_principal": "CAROL@contoso.com"})
    assert (asked, ids.directory.reads) == ([], 2)  # once per import, not once per file
