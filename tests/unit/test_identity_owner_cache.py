"""The identity service keeps directory answers in-process for a minute: thousands of files of
one owner cost one Redis read, not one each; degraded answers (directory down) are not kept, so
the next file asks again. ScaiDrive's users are read again after an import
(tests/state/test_owners_after_import.py)."""
from __future__ import annotations

from types import SimpleNamespace

from services.identity.handlers import Identities
from shared.contracts import Owner

SID = "S-1-5-21-1-2-3-1001"


class FakeOwnerCache:
    """The store's cache of directory answers (shared/store/owner_cache.py), counting reads."""

    def __init__(self, stored: dict[tuple[str, int, int, str], Owner]):
        self.stored = stored
        self.gets = 0

    async def cached(self, cid: str, version: int, users: int, principal: str) -> Owner | None:
        self.gets += 1
        return self.stored.get((cid, version, users, principal))


def runtime(stored: dict[tuple[str, int, int, str], Owner]) -> SimpleNamespace:
    state = SimpleNamespace(owners=FakeOwnerCache(stored), users=None)
    return SimpleNamespace(state=state, settings=SimpleNamespace(namespace="ns"))


def connector(version: int = 1) -> SimpleNamespace:
    mapping = SimpleNamespace(system_owner="system", table=None, strategy="email", ldap=None)
    return SimpleNamespace(id="c1", identity_version=version, identity_mapping=mapping)


async def test_a_cached_answer_is_read_from_redis_once(monkeypatch):
    alice = Owner(user_id="u-alice", source_principal=SID, method="email")
    rt = runtime({("c1", 1, 0, SID): alice})
    ids = Identities(rt)

    async def ask(c, key, system, run_id):
        return system  # the directory has no entry for it

    monkeypatch.setattr(ids, "_ask", ask)
    for _ in range(5):
        assert await ids.resolve(connector(), SID, "run", 0) == alice
    assert rt.state.owners.gets == 1
    # A new mapping version is another question: Redis (then the directory) is asked again.
    assert await ids.resolve(connector(version=2), SID, "run", 0) == Owner(
        user_id="system", source_principal=SID)
    assert rt.state.owners.gets == 2


async def test_directory_answers_are_kept_but_degraded_ones_are_not(monkeypatch):
    rt = runtime({})
    ids = Identities(rt)
    answers = [Owner(user_id="system", source_principal=SID, degraded=True),
               Owner(user_id="u-alice", source_principal=SID, method="email")]
    asked = []

    async def ask(c, key, system, run_id):
        asked.append((c.id, key[3]))
        return answers[len(asked) - 1]

    monkeypatch.setattr(ids, "_ask", ask)
    assert (await ids.resolve(connector(), SID, "run", 0)).degraded
    assert (await ids.resolve(connector(), SID, "run", 0)).user_id == "u-alice"  # asked again
    assert (await ids.resolve(connector(), SID, "run", 0)).user_id == "u-alice"  # kept
    assert len(asked) == 2

