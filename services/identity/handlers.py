"""Identity: decide the ScaiDrive owner of each changed file, then hand it to transfer.

For now every file goes to the connector's system owner, with the source principal kept so a
later mapping (table, directory email, fuzzy name) can re-label it.
"""
from __future__ import annotations

import logging

from opentelemetry import trace

from shared.connectors import Connector
from shared.contracts import FileChanged, Owner, TransferJob
from shared.runtime import Runtime

log = logging.getLogger(__name__)
tracer = trace.get_tracer("scaidrive.identity")


def resolve_owner(c: Connector, principal: str | None) -> Owner:
    return Owner(user_id=c.identity_mapping.system_owner, source_principal=principal,
                 method="system_owner")


async def on_change(rt: Runtime, msg: FileChanged) -> None:
    c = await rt.state.connector(msg.connector_id)
    if c is None:
        return  # connector deleted: its pending changes go nowhere
    with tracer.start_as_current_span("identity", attributes={
            "connector.id": c.id, "run.id": msg.run_id}):
        owner = resolve_owner(c, msg.owner_principal) if msg.version else None
        job = TransferJob(connector_id=c.id, run_id=msg.run_id, job_id=msg.job_id,
                          kind=msg.kind, path=msg.path, from_path=msg.from_path,
                          version=msg.version, owner=owner)
        await rt.broker.transfer_queue(c.id)  # make sure the job has somewhere to go
        await rt.broker.publish("transfer", c.id, job)
        log.debug("owner resolved: %s", owner.method if owner else "-",
                  extra={"connector_id": c.id, "run_id": msg.run_id})
