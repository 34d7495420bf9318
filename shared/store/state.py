"""What the pipeline knows of connectors, shares and their files, in Redis, behind `State`: the
client, the one `key` builder, and the records below. Runs and leases are `runs.RunState` (a
`State`); the other families (deletions held for an admin, delta positions, ...) have their own
module, each with its layout (shared/store/).

Key layout (prefix = SCAIDRIVE_NAMESPACE):

  {ns}:connectors                set of connector ids
  {ns}:connector:{cid}           JSON Connector (password encrypted)
  {ns}:shares / share:{name}     set / JSON {name, quota_bytes, created_at}
  {ns}:usage:{share}             bytes stored in the share, kept incrementally
  {ns}:index:{cid}               hash path -> packed IndexRecord (shared/store/index_codec.py),
                                 with {ns}:labels:{cid}, its owner labels (what the bucket holds)
  {ns}:status:{cid}              hash: paused, next_due, last_success_at, last_duration_s, last_run,
                                 users_labelled (store.Store.users_labelled)
  {ns}:failures:{cid}            list of JSON failure records, newest first, capped
  {ns}:audit                     list of JSON audit events, newest first, capped

In cluster mode (SCAIDRIVE_REDIS_MODE=cluster, shared/store/connection.py) `key` braces the
part after the family, `{ns}:index:{<cid>}` with literal braces, so one connector's keys (and a
share's record and usage) share a slot; keys of one part (connectors, shares, audit) are as above.
What spans slots is never one script or transaction there: see `job_context` and runs.py.
"""
from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any, Self

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from shared.config.connector_model import Connector
from shared.observability import metrics
from shared.store.connection import REPLY_TIMEOUT_S, RedisMode, is_cluster
from shared.store.connection import connect as connect_client
from shared.store.index_codec import IndexCodec
from shared.store.index_codec import record_of as record_of  # re-exported: imported from here
from shared.store.replies import hset_mapping, maybe_texts, text, text_hash, text_set
from shared.store.scripts import JOB_CONTEXT
from shared.sync.model import IndexRecord

FAILURES_KEPT = 10_000
AUDIT_KEPT = 10_000
INDEX_BATCH = 1000
StoreError = RedisError  # what a caller outside the store catches when Redis fails

# IndexRecord, the index's record of a version (one model of a file's version from listing
# to index), lives in the pure core: shared/sync/model.py; its value in Redis, in
# shared/store/index_codec.py.


def share_view(raw: str | None, usage: str | None = None) -> dict | None:
    """A share as the API and the quota check see it: its record with the bytes used."""
    return json.loads(raw) | {"usage_bytes": int(usage or 0)} if raw else None


def held(paused: str | None, auth_failed: str | None) -> bool:
    return "1" in (paused, auth_failed)


@dataclass(frozen=True)
class Failure:
    path: str
    stage: str  # list | read | write | delete | name | scan
    cause: str  # the error class's `cause`
    message: str
    run_id: str | None = None
    at: float = 0.0


@dataclass(frozen=True)
class JobContext:
    """What a transfer job reads before it starts, in one round trip."""
    connector: Connector | None
    held: bool  # paused, or its credentials refused
    known: IndexRecord | None
    share: dict | None  # the share asked for (with usage_bytes), if it exists


@dataclass(frozen=True)
class Indexed:
    """What a transfer job writes when it ends, sent with its outcome in one round trip."""
    path: str
    record: IndexRecord
    share: str
    usage_delta: int


class State:
    def __init__(self, redis: aioredis.Redis, namespace: str):
        self.r = redis
        self.ns = namespace
        self.cluster = is_cluster(redis)  # keys tagged by connector, no cross-slot step
        self._parsed: dict[str, tuple[str, Connector]] = {}  # cid -> (JSON, parsed): hot path
        self._job_context = redis.register_script(JOB_CONTEXT)
        self.index_codec = IndexCodec(redis, namespace)  # index values and their owner labels

    @classmethod
    def connect(cls, url: str, namespace: str, mode: RedisMode = "single",
                reply_timeout_s: float = REPLY_TIMEOUT_S) -> Self:
        # Ride out a blip (a Redis restart, a failover) inside the call; a longer outage
        # surfaces as ConnectionError, which the broker treats as "wait and put back".
        return cls(connect_client(url, mode, reply_timeout_s), namespace)

    def key(self, *parts: str) -> str:
        if self.cluster and len(parts) > 1:
            parts = (parts[0], "{" + parts[1] + "}", *parts[2:])
        return ":".join((self.ns, *parts))

    async def get_many(self, keys: list[str]) -> list[str | None]:
        """MGET; in cluster mode one GET per key, grouped by slot (MGET spans one slot only)."""
        if not keys:
            return []
        if self.cluster:
            return maybe_texts(await self.r.mget_nonatomic(keys))  # type: ignore[attr-defined]
        return maybe_texts(await self.r.mget(keys))

    async def ping(self) -> None:
        """Raises if Redis cannot be reached (a service checks this before it starts)."""
        await self.r.ping()

    async def close(self) -> None:
        await self.r.aclose()

    # --- connectors ---------------------------------------------------------------------

    async def save_connector(self, c: Connector) -> None:
        async with self.r.pipeline(transaction=not self.cluster) as p:  # two slots in a cluster
            p.set(self.key("connector", c.id), c.model_dump_json())
            p.sadd(self.key("connectors"), c.id)
            await p.execute()

    async def connector(self, cid: str) -> Connector | None:
        return self.parse_connector(cid, text(await self.r.get(self.key("connector", cid))))

    def parse_connector(self, cid: str, raw: str | None) -> Connector | None:
        """Validated once per stored version (every transfer job reads its connector)."""
        if not raw:
            return None
        cached = self._parsed.get(cid)
        if cached is None or cached[0] != raw:
            cached = self._parsed[cid] = (raw, Connector.model_validate_json(raw))
        return cached[1]

    async def job_context(self, cid: str, path: str, share: str | None) -> JobContext:
        """One Lua call (JOB_CONTEXT): every transfer job starts with it. In cluster mode the
        script reads the connector's slot and the share (another slot) is read beside it."""
        keys = [self.key("connector", cid), self.key("status", cid), self.key("index", cid)]
        if share and not self.cluster:
            keys += [self.key("share", share), self.key("usage", share)]
        raw, paused, auth_failed, known, *share_raw = await self._job_context(keys=keys,
                                                                             args=[path])
        shared = (await self.share(share) if share else None) if self.cluster else \
            share_view(*share_raw or [None])
        return JobContext(self.parse_connector(cid, raw), held(paused, auth_failed),
                          await self.index_codec.record(cid, known), shared)

    async def connectors(self) -> list[Connector]:
        ids = sorted(text_set(await self.r.smembers(self.key("connectors"))))
        raws = await self.get_many([self.key("connector", i) for i in ids])
        parsed = (self.parse_connector(i, r) for i, r in zip(ids, raws, strict=True))
        return [c for c in parsed if c is not None]

    async def delete_connector(self, cid: str) -> None:
        keys = [self.key(k, cid) for k in
                ("connector", "index", "run", "status", "failures", "lease", "delta", "delta_full",
                 "items", "enum", "enum_items", "held", "approved", "alerts", "uploads")]
        async with self.r.pipeline(transaction=not self.cluster) as p:  # two slots in a cluster
            p.srem(self.key("connectors"), cid)
            p.zrem(self.key("due"), cid)  # schedule_records.py
            p.srem(self.key("parked"), cid)
            p.delete(*keys)
            await p.execute()

    # --- shares -------------------------------------------------------------------------

    async def save_share(self, share: dict) -> bool:
        """False if the share exists already."""
        created = await self.r.set(self.key("share", share["name"]), json.dumps(share), nx=True)
        if created:
            await self.r.sadd(self.key("shares"), share["name"])
        return bool(created)

    async def set_share_quota(self, name: str, quota_bytes: int | None) -> bool:
        """Change a share's quota (None: no quota); False if there is no such share."""
        key = self.key("share", name)
        raw = text(await self.r.get(key))
        if raw is None:
            return False
        await self.r.set(key, json.dumps(json.loads(raw) | {"quota_bytes": quota_bytes}), xx=True)
        return True

    async def share(self, name: str) -> dict | None:
        return share_view(*await self.share_raw(name))

    async def share_raw(self, name: str) -> tuple[str | None, str | None]:
        """The share's stored record and usage, in one round trip."""
        async with self.r.pipeline(transaction=False) as p:
            p.get(self.key("share", name))
            p.get(self.key("usage", name))
            raw, usage = await p.execute()
            return raw, usage

    async def shares(self) -> list[dict]:
        names = sorted(text_set(await self.r.smembers(self.key("shares"))))
        return [s for s in [await self.share(n) for n in names] if s]

    async def delete_share(self, name: str) -> None:
        async with self.r.pipeline(transaction=not self.cluster) as p:  # two slots in a cluster
            p.srem(self.key("shares"), name)
            p.delete(self.key("share", name), self.key("usage", name),
                     self.key("recounted", name), self.key("quotawarn", name))  # usage_records
            await p.execute()

    async def add_usage(self, share: str, delta: int) -> None:
        if delta:
            await self.r.incrby(self.key("usage", share), delta)

    # --- index --------------------------------------------------------------------------

    async def index(self, cid: str) -> dict[str, IndexRecord]:
        """The whole index, decoded as it comes (`index_pages`): never the raw values of the
        whole tree at once beside the records."""
        out: dict[str, IndexRecord] = {}
        async for records in self.index_pages(cid):
            out.update(records)
        return out

    async def index_pages(self, cid: str) -> AsyncIterator[dict[str, IndexRecord]]:
        """The index's records, INDEX_BATCH entries a round trip (HSCAN), decoded page by page."""
        cursor = 0
        while True:
            cursor, page = await self.r.hscan(self.key("index", cid), cursor, count=INDEX_BATCH)
            assert isinstance(page, dict)  # path -> value: a list only with NOVALUES
            yield await self.index_codec.records(cid, text_hash(page))
            if not cursor:
                return

    async def index_record(self, cid: str, path: str) -> IndexRecord | None:
        raw = text(await self.r.hget(self.key("index", cid), path))
        return await self.index_codec.record(cid, raw)

    async def index_records(self, cid: str, paths: list[str]) -> dict[str, IndexRecord]:
        """The records of those of `paths` the index holds, in one round trip."""
        if not paths:
            return {}
        raws = await self.r.hmget(self.key("index", cid), paths)
        return await self.index_codec.records(cid, {
            path: raw for path, raw in zip(paths, map(text, raws), strict=True) if raw})

    async def put_index(self, cid: str, path: str, rec: IndexRecord) -> None:
        value, = await self.index_codec.values(cid, [rec])
        await self.r.hset(self.key("index", cid), path, value)

    async def drop_index(self, cid: str, *paths: str) -> None:
        """Forget the index entries of these paths, in one round trip."""
        if paths:
            await self.r.hdel(self.key("index", cid), *paths)

    # --- status, pause, failures --------------------------------------------------------

    async def snapshots(self, cids: list[str]) -> list[tuple[dict, dict, str | None]]:
        """(status, run, lease holder) of each connector, in one round trip (the scheduler's
        tick looks at every connector every second)."""
        async with self.r.pipeline(transaction=False) as p:
            for cid in cids:
                p.hgetall(self.key("status", cid))
                p.hgetall(self.key("run", cid))
                p.get(self.key("lease", cid))
            flat = await p.execute()
        return [tuple(flat[i:i + 3]) for i in range(0, len(flat), 3)]

    async def status(self, cid: str) -> dict:
        return await self.r.hgetall(self.key("status", cid))

    async def set_status(self, cid: str, **fields) -> None:
        """`next_due` also goes to the scheduler's due set (schedule_records.py)."""
        mapping = hset_mapping({k: str(v) for k, v in fields.items()})
        if "next_due" not in fields:
            await self.r.hset(self.key("status", cid), mapping=mapping)
            return
        async with self.r.pipeline(transaction=False) as p:  # two slots in a cluster
            p.hset(self.key("status", cid), mapping=mapping)
            p.zadd(self.key("due"), {cid: float(fields["next_due"])})
            await p.execute()

    async def flag_status(self, cid: str, flag: str) -> bool:
        """Set a status flag; True only for the caller that set it (audit it once)."""
        return bool(await self.r.hsetnx(self.key("status", cid), flag, "1"))

    async def clear_status(self, cid: str, *fields: str) -> None:
        await self.r.hdel(self.key("status", cid), *fields)

    async def paused(self, cid: str) -> bool:
        """Work is held: paused by an admin, or stopped because the source refused the
        connector's credentials (until they are updated)."""
        paused, auth_failed = maybe_texts(await self.r.hmget(self.key("status", cid), "paused",
                                                             "auth_failed"))
        return held(paused, auth_failed)

    async def connectors_held(self, cids: list[str]) -> list[tuple[Connector | None, bool]]:
        """Each connector (None: deleted) with its held flag (`paused`), in one round trip."""
        async with self.r.pipeline(transaction=False) as p:
            for cid in cids:
                self.held_into(p, cid)
            flat = await p.execute()
        return [self.parse_held(cid, flat[2 * i], flat[2 * i + 1]) for i, cid in enumerate(cids)]

    def held_into(self, p: Pipeline, cid: str) -> None:
        """Queue the two reads of `connectors_held` for one connector (replies: `parse_held`)."""
        p.get(self.key("connector", cid))
        p.hmget(self.key("status", cid), "paused", "auth_failed")

    def parse_held(self, cid: str, raw: Any, status: Any) -> tuple[Connector | None, bool]:
        return self.parse_connector(cid, text(raw)), held(*maybe_texts(status))

    async def connector_held(self, cid: str) -> tuple[Connector | None, bool]:
        """The connector and whether its work is held, in one round trip (a message's start)."""
        return (await self.connectors_held([cid]))[0]

    async def add_failure(self, cid: str, failure: Failure) -> None:
        await self.add_failures(cid, [failure])

    async def add_failures(self, cid: str, failures: list[Failure]) -> None:
        """Record failures in one round trip, however many a scan found."""
        if not failures:
            return
        now = time.time()
        recs = [json.dumps(asdict(f) | {"at": f.at or now}) for f in failures]
        for f in failures:
            metrics.errors.add(1, {"connector.id": cid, "cause": f.cause})
        async with self.r.pipeline(transaction=False) as p:
            p.lpush(self.key("failures", cid), *recs)
            p.ltrim(self.key("failures", cid), 0, FAILURES_KEPT - 1)
            await p.execute()

    async def failures(self, cid: str, limit: int = 1000) -> list[dict]:
        return [json.loads(r) for r in await self.r.lrange(self.key("failures", cid), 0, limit - 1)]

    # --- credentials rejected, audit ----------------------------------------------------

    async def mark_auth_failed(self, cid: str, message: str) -> bool:
        """True only for the caller that flipped the connector into `auth_failed` (so the
        audit event and the platform event are written once per incident)."""
        status = self.key("status", cid)
        first = await self.r.hsetnx(status, "auth_failed", "1")
        if first:
            await self.r.hset(status, "auth_error", message)
        return bool(first)

    async def clear_auth_failed(self, cid: str) -> bool:
        return bool(await self.r.hdel(self.key("status", cid), "auth_failed", "auth_error"))

    async def add_audit(self, event: dict) -> None:
        async with self.r.pipeline(transaction=False) as p:
            p.lpush(self.key("audit"), json.dumps(event | {"at": event.get("at") or time.time()}))
            p.ltrim(self.key("audit"), 0, AUDIT_KEPT - 1)
            await p.execute()

    async def audit_event(self, event, **extra) -> None:
        """A platform event (a contract with `event` and `at`) as an audit entry."""
        await self.add_audit(event.model_dump(mode="json", exclude={"schema_version"}) |
                             {"at": event.at.timestamp()} | extra)

    async def audit(self, limit: int = 1000) -> list[dict]:
        return [json.loads(r) for r in await self.r.lrange(self.key("audit"), 0, limit - 1)]
