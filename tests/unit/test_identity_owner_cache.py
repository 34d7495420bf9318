"""The identity service keeps directory answers in-process for a minute: thousands of files of
one owner cost one Redis read, not one each; degraded answers (directory down) are not kept, so
the next file asks again. ScaiDrive's users are kept 30 s, but a miss reads them again."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from services.identity.directory import DirectoryEntry
from services.identity.handlers import MISS_REFRESH_S, Identities
from shared.config.identity_mapping import User
from shared.contracts import Owner

SID = "S-1-5-21-1-2-3-1001"


class FakeOwnerCache:
    """The store's cache of directory answers (shared/store/owner_cache.py), counting reads."""

    def __init__(self, stored: dict[tuple[str, int, str], Owner]):
        self.stored = stored
        self.gets = 0

    async def cached(self, cid: str, version: int, principal: str) -> Owner | None:
        self.gets += 1
        return self.stored.get((cid, version, principal))


def runtime(stored: dict[tuple[str, int, str], Owner]) -> SimpleNamespace:
    state = SimpleNamespace(owners=FakeOwnerCache(stored), users=None)
    return SimpleNamespace(state=state, settings=SimpleNamespace(namespace="ns"))


def connector(version: int = 1) -> SimpleNamespace:
    mapping = SimpleNamespace(system_owner="system", table=None, strategy="email", ldap=None)
    return SimpleNamespace(id="c1", identity_version=version, identity_mapping=mapping)


async def test_a_cached_answer_is_read_from_redis_once(monkeypatch):
    alice = Owner(user_id="u-alice", source_principal=SID, method="email")
    rt = runtime({("c1", 1, SID): alice})
    ids = Identities(rt)

    async def ask(c, principal, system, run_id):
        return system  # the directory has no entry for it

    monkeypatch.setattr(ids, "_ask", ask)
    for _ in range(5):
        assert await ids.resolve(connector(), SID, "run") == alice
    assert rt.state.owners.gets == 1
    # A new mapping version is another question: Redis (then the directory) is asked again.
    assert await ids.resolve(connector(version=2), SID, "run") == Owner(
        user_id="system", source_principal=SID)
    assert rt.state.owners.gets == 2


async def test_directory_answers_are_kept_but_degraded_ones_are_not(monkeypatch):
    rt = runtime({})
    ids = Identities(rt)
    answers = [Owner(user_id="system", source_principal=SID, degraded=True),
               Owner(user_id="u-alice", source_principal=SID, method="email")]
    asked = []

    async def ask(c, principal, system, run_id):
        asked.append((c.id, principal))
        return answers[len(asked) - 1]

    monkeypatch.setattr(ids, "_ask", ask)
    assert (await ids.resolve(connector(), SID, "run")).degraded
    assert (await ids.resolve(connector(), SID, "run")).user_id == "u-alice"  # asked again
    assert (await ids.resolve(connector(), SID, "run")).user_id == "u-alice"  # kept
    assert len(asked) == 2


class Directory:
    """ScaiDrive's users as `PUT /users` left them (shared/store/users.py)."""

    def __init__(self, users: list[User]):
        self.list = users

    async def users(self) -> list[User]:
        return list(self.list)


async def test_a_user_imported_moments_ago_is_matched_by_name_too():
    """By name as by e-mail: a miss reads the users again (at most once a second), so a user
    imported just before a run is not left out for the cache's 30 s (before: by name only
    e-mail misses re-read, and such files went to the system owner)."""
    directory = Directory([User(id="u-alice", display_name="Alice Martin")])
    rt = runtime({})
    rt.state.users = directory
    ids = Identities(rt)
    c = connector()
    c.identity_mapping = SimpleNamespace(strategy="name", name_threshold=85, name_margin=5)
    assert await ids.users() == directory.list  # read, and kept for 30 s
    directory.list = [*directory.list, User(id="u-carol", display_name="Carol White")]
    await asyncio.sleep(MISS_REFRESH_S)
    owner = await ids._match(c, SID, DirectoryEntry(None, "Carol White", False))
    assert owner is not None and (owner.user_id, owner.method) == ("u-carol", "name")
