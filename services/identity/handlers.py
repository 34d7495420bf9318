"""Identity: decide the ScaiDrive owner of each changed file, then hand it to transfer.

The chain: the connector's explicit table, then its strategy (email or fuzzy name, from the
directory entry of the owner SID), then the system owner. Directory answers are cached by the
store with an expiry (shared/store/owner_cache.py); when the directory is down, the last known
mapping (or the system owner) is used, the file still syncs, and the run counts the degraded
mappings. ScaiDrive's users are read again when an import raised their version (read with the
connector at each message's start): a user imported before a run is matched by it, and the
answers cached under the older users are not used.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging

from cachetools import TTLCache
from opentelemetry import trace

from services.identity.directory import DirectoryDown, DirectoryEntry, ldap_lookup
from shared.app.held_work import park
from shared.app.runtime import Runtime
from shared.config.active_directory import group_reason, unowned_reason
from shared.config.connector_model import Connector
from shared.config.identity_mapping import (
    UserDirectory,
    UserIndex,
    match_email,
    match_name,
    parse_table,
)
from shared.contracts import (
    ChangeKind,
    FileChanged,
    FileChanges,
    Owner,
    Transfer,
    TransferBatch,
    TransferJob,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("scaidrive.identity")
CACHE_TTL_S = 3600
# Directory answers also kept in-process: thousands of files of one owner cost no Redis round
# trip each. Short next to CACHE_TTL_S, so an answer outlives Redis's copy by a minute at most.
OWNERS_KEPT_S = 60
OWNERS_KEPT = 10_000
Question = tuple[str, int, int, str]  # connector id, mapping version, users' version, principal


@functools.lru_cache(maxsize=128)
def _table(text: str | None) -> dict[str, str]:
    """Parsed once per table text, not once per file."""
    return parse_table(text)[0]


class Identities:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.directory: UserDirectory = rt.state.users
        self._users: tuple[int | None, UserIndex] = (None, UserIndex([]))
        self._inflight: dict[Question, asyncio.Future[Owner]] = {}
        self._owners: TTLCache[Question, Owner] = TTLCache(OWNERS_KEPT, OWNERS_KEPT_S)

    async def users(self, version: int) -> UserIndex:
        """ScaiDrive's users as the import `version` left them: read and indexed once per
        import."""
        if self._users[0] != version:
            self._users = (version, UserIndex(await self.directory.users()))
        return self._users[1]

    async def resolve(self, c: Connector, principal: str | None, run_id: str,
                      users_version: int) -> Owner:
        """`users_version`: `StoredUsers.version` as the message's start read it."""
        mapping = c.identity_mapping
        system = Owner(user_id=mapping.system_owner, source_principal=principal)
        if principal is None:
            return system
        table = _table(mapping.table)
        if principal in table:
            return Owner(user_id=table[principal], source_principal=principal, method="table")
        if "@" in principal:  # SharePoint's owner is the Entra user's mail claim itself
            user = match_email(principal, await self.users(users_version))
            return Owner(user_id=user.id, source_principal=principal, method="email") \
                if user else system
        if mapping.strategy not in ("email", "name"):
            return system
        return await self._directory_owner(c, (c.id, c.identity_version, users_version,
                                                   principal), system, run_id)

    async def _directory_owner(self, c: Connector, key: Question, system: Owner,
                               run_id: str) -> Owner:
        """The directory's answer: kept in-process, else cached in Redis, else asked (once for
        all the files of that owner arriving meanwhile)."""
        if (owner := self._owners.get(key)) is not None:
            return owner
        if (cached := await self.rt.state.owners.cached(*key)) is not None:
            owner = cached
        else:
            if key not in self._inflight:
                self._inflight[key] = asyncio.ensure_future(self._ask(c, key, system, run_id))
                self._inflight[key].add_done_callback(lambda _f: self._inflight.pop(key, None))
            owner = await asyncio.shield(self._inflight[key])
        if not owner.degraded:  # what Redis caches, and only that: degraded ones are retried
            self._owners[key] = owner
        return owner

    async def _ask(self, c: Connector, key: Question, system: Owner, run_id: str) -> Owner:
        mapping, principal = c.identity_mapping, key[3]
        if mapping.ldap is None:  # not with these strategies (IdentityMapping's validation)
            return system
        if reason := unowned_reason(principal):  # BUILTIN\Administrators, SYSTEM, ...
            return await self._unowned(c, key, system, reason, run_id)
        password = self.rt.box.open(c.ldap_password_enc) if c.ldap_password_enc else None
        try:
            entry = await asyncio.to_thread(ldap_lookup, mapping.ldap, password, principal)
        except DirectoryDown as exc:
            log.warning("directory unreachable, degraded mapping: %s", exc,
                        extra={"connector_id": c.id, "run_id": run_id})
            await self.rt.state.add_to_run(c.id, "owners_degraded")
            known = await self.rt.state.owners.last_known(c.id, principal) or system
            return known.model_copy(update={"degraded": True})
        if entry is not None and entry.group:
            return await self._unowned(c, key, system, group_reason(entry.name), run_id)
        owner = await self._match(c, key, entry) or system
        await self.rt.state.owners.remember(*key, owner, CACHE_TTL_S)
        return owner

    async def _unowned(self, c: Connector, key: Question, system: Owner, reason: str,
                       run_id: str) -> Owner:
        """A group or a built-in principal owns the file: nobody's account, the system owner
        (never matched by a group's mail or name to a person)."""
        log.info("owner %s goes to the system owner: %s", key[3], reason,
                 extra={"connector_id": c.id, "run_id": run_id})
        owner = system.model_copy(update={"reason": reason})
        await self.rt.state.owners.remember(*key, owner, CACHE_TTL_S)
        return owner

    async def _match(self, c: Connector, key: Question,
                     entry: DirectoryEntry | None) -> Owner | None:
        if entry is None:
            return None
        mail, name, _group = entry
        users, mapping, principal = await self.users(key[2]), c.identity_mapping, key[3]
        if mapping.strategy == "email":
            user = match_email(mail, users) if mail else None
            if user is None:
                return None
            return Owner(user_id=user.id, source_principal=principal, method="email")
        user, score = match_name(name, users, mapping.name_threshold, mapping.name_margin)
        if user is None:
            return None
        return Owner(user_id=user.id, source_principal=principal, method="name", score=score)


# Written back to (deleted at, renamed at) the source: the ScaiDrive object keeps its owner.
NO_OWNER = (ChangeKind.PUSHED, ChangeKind.DELETED_IN_SCAIDRIVE, ChangeKind.MOVED_IN_SCAIDRIVE)


async def on_change(rt: Runtime, identities: Identities, msg: FileChanged | FileChanges) -> None:
    """A change alone becomes a `TransferJob`; a batch becomes one `TransferBatch` (each
    distinct owner resolved once)."""
    c, held, users_version = await rt.state.connector_for_owners(msg.connector_id)
    if c is None:
        return  # connector deleted: its pending changes go nowhere
    if held:
        await park(rt, c.id)  # paused (or credentials refused): no directory queries either
    with tracer.start_as_current_span("identity", attributes={
            "connector.id": c.id, "run.id": msg.run_id}):
        changes = msg.changes if isinstance(msg, FileChanges) else [msg]
        owners: dict[str | None, Owner] = {}
        for change in changes:
            if change.version and change.kind not in NO_OWNER and \
                    change.owner_principal not in owners:
                owners[change.owner_principal] = await identities.resolve(
                    c, change.owner_principal, msg.run_id, users_version)
        transfers = [Transfer(job_id=ch.job_id, kind=ch.kind, path=ch.path,
                              from_path=ch.from_path, version=ch.version,
                              owner=owners.get(ch.owner_principal)
                              if ch.version and ch.kind not in NO_OWNER else None,
                              target_etag=ch.target_etag) for ch in changes]
        out: TransferJob | TransferBatch
        if isinstance(msg, FileChanges):
            out = TransferBatch(connector_id=c.id, run_id=msg.run_id, transfers=transfers,
                                lane=msg.lane)
        else:
            out = TransferJob(connector_id=c.id, run_id=msg.run_id, lane=msg.lane,
                              **dict(transfers[0]))
        await rt.broker.publish_work("transfer", out, msg.lane, c.id)
        if log.isEnabledFor(logging.DEBUG):  # per message: not even formatted at INFO
            log.debug("owners resolved: %s", json.dumps(
                {p: o.model_dump() for p, o in owners.items() if p}),
                extra={"connector_id": c.id, "run_id": msg.run_id})
