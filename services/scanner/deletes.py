"""Deletions that wait for an admin, in either mode: a run that would delete more than the
connector's `max_delete_percent` of a side's files deletes none of them there (a share that
suddenly lists empty, a moved folder, a script gone wrong), and a source that lists no file at
all while files were synced is flagged `suspicious_empty`."""
from __future__ import annotations

import logging

from shared.connectors import Connector
from shared.contracts import ChangeKind, DeletesHeld
from shared.reconcile import Plan
from shared.runtime import Runtime
from shared.sources import Listing

log = logging.getLogger(__name__)
SAMPLE = 20


def hold_mass_deletes(c: Connector, plan: Plan, n_indexed: int,
                      approved: frozenset[str]) -> dict[str, str]:
    """One-way: take the deletions out of `plan` when there are too many; path -> side."""
    deletes = [a for a in plan.actions if a.kind is ChangeKind.DELETED and a.path not in approved]
    if not deletes or len(deletes) <= c.max_delete_percent / 100 * max(n_indexed, 1):
        return {}
    held = {a.path for a in deletes}
    plan.actions[:] = [a for a in plan.actions if a.path not in held or a.kind is not
                       ChangeKind.DELETED]
    return {path: "scaidrive" for path in held}


async def hold_deletes(rt: Runtime, c: Connector, run_id: str, held: dict[str, str],
                       totals: dict[str, int]) -> None:
    """Store the held set; audit and announce it once per new set, not on every run."""
    if not await rt.state.hold_deletes(c.id, held):
        return
    for side, total in totals.items():
        paths = sorted(p for p, s in held.items() if s == side)
        if not paths:
            continue
        event = DeletesHeld(connector_id=c.id, connector_name=c.name, run_id=run_id, side=side,
                            count=len(paths), total=total, sample=paths[:SAMPLE])
        await rt.state.add_audit(event.model_dump(mode="json", exclude={"schema_version"}) |
                                 {"at": event.at.timestamp(), "actor": "system"})
        await rt.broker.publish("events", "connector.deletes_held", event)
        log.warning("%d of %d files would be deleted on the %s side: held for an admin",
                    len(paths), total, side, extra={"connector_id": c.id, "run_id": run_id})


async def check_empty(rt: Runtime, c: Connector, run_id: str, listing: Listing,
                      n_indexed: int) -> None:
    """A complete listing with no file where files were synced before: flag it (once)."""
    empty = listing.complete and not listing.entries and not listing.failures and n_indexed
    if not empty:
        if listing.entries:
            await rt.state.clear_status(c.id, "suspicious_empty")
        return
    if await rt.state.flag_status(c.id, "suspicious_empty"):
        await rt.state.add_audit({"event": "connector.suspicious_empty", "connector_id": c.id,
                                  "connector_name": c.name, "kind": c.kind, "run_id": run_id,
                                  "indexed_files": n_indexed, "actor": "system"})
        log.warning("the source listed no file while %d were synced: deletions held",
                    n_indexed, extra={"connector_id": c.id, "run_id": run_id})
