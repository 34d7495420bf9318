"""Deletions that wait for an admin, in either mode: a run that would delete more than the
connector's `max_delete_percent` of a side's files deletes none of them there (a share that
suddenly lists empty, a moved folder, a script gone wrong), and a source that lists no file at
all while files were synced is flagged `suspicious_empty`."""
from __future__ import annotations

import logging

from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.contracts import DeletesHeld, DeleteSide
from shared.store.daily_counters import raise_flag
from shared.sync.rules import looks_emptied

log = logging.getLogger(__name__)
SAMPLE = 20


async def hold_deletes(rt: Runtime, c: Connector, run_id: str, held: dict[str, str],
                       totals: dict[DeleteSide, int]) -> None:
    """Store the held set; audit and announce it once per new set, not on every run."""
    if not await rt.state.delete_holds.hold(c.id, held):
        return
    for side, total in totals.items():
        paths = sorted(p for p, s in held.items() if s == side)
        if not paths:
            continue
        event = DeletesHeld(connector_id=c.id, connector_name=c.name, run_id=run_id, side=side,
                            count=len(paths), total=total, sample=paths[:SAMPLE])
        await rt.state.audit_event(event, actor="system")
        await rt.broker.publish("events", "connector.deletes_held", event)
        log.warning("%d of %d files would be deleted on the %s side: held for an admin",
                    len(paths), total, side, extra={"connector_id": c.id, "run_id": run_id})


async def check_empty(rt: Runtime, c: Connector, run_id: str, complete: bool, listed: int,
                      failed: int, n_indexed: int) -> None:
    """A complete listing with no file where files were synced before: flag it (once)."""
    if not looks_emptied(complete, listed, failed, n_indexed):
        if listed:
            await rt.state.clear_status(c.id, "suspicious_empty")
        return
    if await raise_flag(rt.state, c, "suspicious_empty", "connector.suspicious_empty",
                        run_id=run_id, indexed_files=n_indexed):
        log.warning("the source listed no file while %d were synced: deletions held",
                    n_indexed, extra={"connector_id": c.id, "run_id": run_id})
