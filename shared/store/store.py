"""The store a service holds (`Runtime.state`): one Redis client, opened from the settings, and
every family of keys behind typed methods. The connectors' records, runs and leases are methods
of `Store` itself (`state.State`, `runs.RunState`); the other families are objects on it, each
module documenting its own key layout:

  conflicts          two-way conflicts and their held paths      (conflict_records.ConflictStore)
  scan_listing(cid)  a streaming one-way scan's working set      (scan_listing.ScanStore)
  two_way_scan(cid)  the same, read back as a two-way scan's rows (scan_sides.TwoWayScanStore)
  claim_records      claims of long work                         (claim_records.ClaimRecords)
  users              the imported ScaiDrive users                (users.StoredUsers)
  owners             the identity service's directory answers    (owner_cache.OwnerCache)
  api_access         console sessions, failed token checks       (api_access.ApiAccess)
  connector_pages    the connectors a page at a time (the API's listing)
                                                                 (connector_pages.ConnectorPages)
  batches            a transfer batch's reads and writes, one script each
                                                                 (batch_records.BatchRecords)
  schedule           when connectors are due, which have parked work
                                                                 (schedule_records.ScheduleRecords)
  alerts             the alert conditions mailed, once per incident
                                                                 (alert_records.AlertRecords)
  usage              a share's recount and quota warning         (usage_records.UsageRecords)
  throttles          a connector's bandwidth bucket and transfer slots, across workers
                                                                 (throttle_records.ThrottleRecords)
  delete_holds       deletions held for an admin, and those approved
                                                                 (delete_holds.DeleteHolds)
  delta_positions    where a delta listing resumes (SharePoint), read with the index's files
                                                                 (delta_positions.DeltaPositions)
  uploads            multipart uploads begun and not ended       (upload_records.UploadRecords)

A service never sees the client, the namespace or a key (tests/unit/test_store_boundary.py).
"""
from __future__ import annotations

import redis.asyncio as aioredis

from shared.config.connector_model import Connector
from shared.config.settings import Settings
from shared.store.alert_records import AlertRecords
from shared.store.api_access import ApiAccess
from shared.store.batch_records import BatchRecords
from shared.store.claim_records import ClaimRecords
from shared.store.conflict_records import ConflictStore
from shared.store.connector_pages import ConnectorPages
from shared.store.delete_holds import DeleteHolds
from shared.store.delta_positions import DeltaPositions
from shared.store.owner_cache import OwnerCache
from shared.store.runs import RunState
from shared.store.scan_listing import CHUNK, ScanStore
from shared.store.scan_sides import TwoWayScanStore
from shared.store.schedule_records import ScheduleRecords
from shared.store.throttle_records import ThrottleRecords
from shared.store.upload_records import UploadRecords
from shared.store.usage_records import UsageRecords
from shared.store.users import StoredUsers


class Store(RunState):
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        super().__init__(redis, namespace)
        self.conflicts = ConflictStore(redis, namespace)
        self.claim_records = ClaimRecords(redis, namespace)
        self.users = StoredUsers(redis, namespace)
        self.owners = OwnerCache(redis, namespace)
        self.api_access = ApiAccess(redis, namespace)
        self.batches = BatchRecords(self)
        self.connector_pages = ConnectorPages(self)
        self.schedule = ScheduleRecords(self)
        self.alerts = AlertRecords(self)
        self.usage = UsageRecords(self)
        self.throttles = ThrottleRecords(self)
        self.delete_holds = DeleteHolds(self)
        self.delta_positions = DeltaPositions(self)
        self.uploads = UploadRecords(self)

    @classmethod
    async def open(cls, settings: Settings) -> Store:
        """Connect with the service's settings and check that Redis answers."""
        store = cls.connect(settings.redis_url.get_secret_value(), settings.namespace,
                            settings.redis_mode, settings.redis_timeout_s)
        await store.ping()
        return store

    async def connector_for_owners(self, cid: str) -> tuple[Connector | None, bool, int]:
        """`connector_held` and the users' version (`StoredUsers.version`) in its round trip:
        an identity message's start."""
        async with self.r.pipeline(transaction=False) as p:
            self.held_into(p, cid)
            self.users.version_into(p)
            raw, status, version = await p.execute()
        return (*self.parse_held(cid, raw, status), self.users.parse_version(version))

    async def users_labelled(self, cid: str) -> tuple[int, int | None]:
        """The users' version now, and the one the connector's files were last all labelled
        under (`mark_users_labelled`; None: never), in one round trip (a scan's start)."""
        async with self.r.pipeline(transaction=False) as p:
            self.users.version_into(p)
            p.hget(self.key("status", cid), "users_labelled")
            now, then = await p.execute()
        return self.users.parse_version(now), None if then is None else int(then)

    async def mark_users_labelled(self, cid: str, version: int) -> None:
        await self.r.hset(self.key("status", cid), "users_labelled", str(version))

    def scan_listing(self, cid: str, chunk: int = CHUNK) -> ScanStore:
        """The working set of the connector's scan (one scan at a time: its lease), moved
        `chunk` entries per round trip."""
        return ScanStore(self.r, self.ns, cid, chunk)

    def two_way_scan(self, cid: str, chunk: int = CHUNK) -> TwoWayScanStore:
        """A two-way scan's working set (one scan at a time: its lease), `chunk` at a time."""
        return TwoWayScanStore(self.r, self.ns, cid, chunk)
