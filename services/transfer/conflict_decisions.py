"""Whether a conflict decision may still be applied: the check a RESOLVED job makes before it
writes anything, and what happens when it finds a side changed since detection.

An admin (or a policy) decided between the two versions the conflict recorded: the source's
version and the ScaiDrive object's etag. If either side holds something else now, applying the
decision would overwrite an edit nobody decided about. So the conflict is superseded instead
(compare-and-set from `resolved`, with the reason "the {side} version changed since
detection"), its path is released so the next run detects it anew with the current versions,
nothing is written, and `conflict.superseded` is published and audited; `conflict.resolved` is
not. The check is not the last word: every write of the decision is itself conditional on the
versions checked (services/transfer/source_writes.py), and a side found changed there, in the
moment between the check and the write, supersedes the decision the same way
(`superseded_while_applying`, the reason ending "as the decision was being applied").

A decision found current is flagged `decision_checked` before anything is written, and
announced as `conflict.resolved` once its writes are done (`announce_resolved`). A redelivered
job finds the flag set and applies without checking again (a side it already wrote would look
changed): its writes are conditional all the same, and a side that does not hold the expected
version is compared with the other, so a write that already landed is recognised (both sides
identical) and a user's edit is not overwritten. Two copies of the job handled at once (a
redelivered ConflictDetected sends the job twice) check one after the other, under a short
claim.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from shared.app.runtime import Runtime
from shared.app.source_pool import Sources
from shared.config.connector_model import Connector
from shared.contracts import ConflictResolved, ConflictSuperseded, TransferJob
from shared.errors import NotFound
from shared.messaging.redelivery import Defer
from shared.sources.base import Source
from shared.store.conflict_records import ConflictStore
from shared.sync.keys import object_key
from shared.sync.model import SourceEntry, same_content

log = logging.getLogger(__name__)

Side = Literal["source", "ScaiDrive"]
CLAIM = "published_resolved"  # the claim on checking a decision (a lease name of the store)
CHECKED = "decision_checked"  # the flag: found current, its writes may have begun
CLAIM_S = 120  # outlives a check (two stats); a crashed holder's claim expires
CLAIM_WAIT_S = 10  # how long a second copy waits for the first's check before going back


class Worker(Protocol):
    """What the check uses of the transfer worker (services/transfer/handlers.py)."""

    rt: Runtime
    sources: Sources

    async def _thread(self, fn: Callable[..., Any], *args: Any) -> Any: ...


async def may_apply(worker: Worker, store: ConflictStore, c: Connector,
                    job: TransferJob) -> bool:
    """True: write the decision now. False: it was applied already (a redelivery), or it is
    stale and the conflict is superseded: nothing may be written."""
    cid = job.conflict_id or ""
    async with _checking(store, cid):
        return await _may_apply(worker, store, c, job, cid)


async def _may_apply(worker: Worker, store: ConflictStore, c: Connector, job: TransferJob,
                     cid: str) -> bool:
    record = await store.get(cid)
    if record is None:
        return False  # the connector was deleted, and its conflicts with it
    if record["state"] == "superseded":  # by an earlier delivery whose event may be unsent
        await announce_superseded(worker.rt, store, c, record)
        return False
    if (await store.held_paths(c.id)).get(job.path) != cid:
        return False  # applied already (a redelivery)
    if record["state"] != "resolved":
        log.warning("decision on conflict %s dropped: it is %s", cid, record["state"],
                    extra={"connector_id": c.id})
        return False
    if record[CHECKED] or record["published_resolved"]:
        return True  # found current by an earlier delivery: finish applying it
    changed = await changed_side(worker, c, job)
    if changed is None:
        await store.set_flag(cid, CHECKED)
        return True
    await _supersede(worker.rt, store, c, cid, f"the {changed} version changed since detection")
    return False


async def superseded_while_applying(rt: Runtime, store: ConflictStore, c: Connector, cid: str,
                                    side: Side) -> None:
    """A conditional write of the decision found `side` changed after the check passed: the
    decision is superseded as if the check had found it (nothing of it was written there)."""
    await _supersede(rt, store, c, cid, f"the {side} version changed since detection, as the "
                                        "decision was being applied")


async def _supersede(rt: Runtime, store: ConflictStore, c: Connector, cid: str,
                     reason: str) -> None:
    won, now = await store.supersede(cid, reason, from_state="resolved")
    if won:
        log.info("decision on conflict %s not applied: %s; superseded, path released", cid,
                 reason, extra={"connector_id": c.id})
    if now is not None and now["state"] == "superseded":
        await announce_superseded(rt, store, c, now)


async def announce_resolved(rt: Runtime, store: ConflictStore, cid: str) -> None:
    """`conflict.resolved` once the decision's writes are done (at least once: a crash before
    the flag sends it again with the same message id, for consumers to drop)."""
    record = await store.get(cid)
    if record is None or record["published_resolved"] or record["state"] != "resolved":
        return
    await rt.broker.publish("events", "conflict.resolved", _resolved(record),
                            message_id=f"conflict.resolved:{cid}")  # to dedupe by
    await store.set_flag(cid, "published_resolved")


async def changed_side(worker: Worker, c: Connector, job: TransferJob) -> Side | None:
    """The first side found not holding the version the conflict was detected with (gone
    counts as changed), or None if both still do. A source that cannot be asked raises (the
    job is retried): a decision is never applied unchecked."""
    key = object_key(c.target_prefix, job.path)
    obj = await worker._thread(worker.rt.storage.stat, c.target_share, key)
    if _etag(obj.etag if obj is not None else None) != _etag(job.target_etag):
        return "ScaiDrive"
    try:
        entry: SourceEntry = await worker._thread(_stat, worker.sources.get, c, job.path)
    except NotFound:
        return "source"
    if job.version is None or not same_content(entry, job.version):
        return "source"
    return None


async def announce_superseded(rt: Runtime, store: ConflictStore, c: Connector,
                              record: dict[str, Any]) -> None:
    """`conflict.superseded` on the events exchange and in the audit log, once per conflict
    (at least once: a failure leaves the flag unset for the redelivered job). Only for a
    decision that was not applied: a conflict replaced by a newer one on its path while still
    open is told by that one's `conflict.detected`."""
    if record["published_superseded"] or not record["winner"] or not record["resolved_by"]:
        return
    at = record.get("superseded_at")
    event = ConflictSuperseded(
        conflict_id=record["id"], connector_id=c.id, path=record["path"],
        reason=record.get("reason") or "a side changed since detection",
        winner=record["winner"], resolved_by=record["resolved_by"],
        superseded_at=datetime.fromisoformat(at) if at else datetime.now(UTC))
    await rt.broker.publish("events", "conflict.superseded", event,
                            message_id=f"conflict.superseded:{record['id']}")
    await rt.state.add_audit({
        "event": event.event, "connector_id": c.id, "connector_name": c.name, "kind": c.kind,
        "actor": "system", "conflict_id": event.conflict_id, "path": event.path,
        "reason": event.reason, "winner": event.winner, "resolved_by": event.resolved_by})
    await store.set_flag(record["id"], "published_superseded")


@asynccontextmanager
async def _checking(store: ConflictStore, cid: str) -> AsyncIterator[None]:
    """Hold the claim on checking this decision; while another copy of the job holds it, wait
    a little, then put this one back in the queue (Defer: its attempts are not spent)."""
    deadline = asyncio.get_running_loop().time() + CLAIM_WAIT_S
    while (token := await store.claim(cid, CLAIM, CLAIM_S)) is None:
        if asyncio.get_running_loop().time() > deadline:
            raise Defer()
        await asyncio.sleep(0.2)
    try:
        yield
    finally:
        await store.release(cid, CLAIM, token)


def _resolved(record: dict[str, Any]) -> ConflictResolved:
    return ConflictResolved(
        conflict_id=record["id"], connector_id=record["connector_id"], path=record["path"],
        winner=record["winner"], resolved_by=record["resolved_by"],
        automatic=record["automatic"], resolved_at=datetime.fromisoformat(record["resolved_at"]))


def _stat(source_of: Callable[[Connector], Source], c: Connector, path: str) -> SourceEntry:
    """Blocking (opening the source may connect): run in the worker's pool."""
    return source_of(c).stat(path)


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None
