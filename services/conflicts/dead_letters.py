"""Dead-lettered detections are not silent: the conflict service binds its own queue,
`{ns}.dead.conflicts`, to the dead-letter exchange (`{ns}.dead`, a fanout: the operators'
`{ns}.dead` and the scheduler's `{ns}.dead.runs` get their copies as before) and, for each
`ConflictDetected` among the dead letters whose notices were not all sent, shows the failure
on the conflict (`notify_failed`, with the message's `x-error`), where the API and the
console offer to send them again. A detection that died before it was even recorded is
recorded here first, so it does not vanish. A dead-lettered RESOLVED `TransferJob` (a decision
that could not be applied) shows on its conflict as `apply_failed` with the error: its path
stays held, and `POST /conflicts/{id}/reapply` sends the decision again. Other dead letters
are left to their owners.
"""
from __future__ import annotations

import logging

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from services.conflicts.notices import notices_done
from shared.app.runtime import Runtime
from shared.contracts import ChangeKind, ConflictDetected, TransferJob, UnknownMessage, decode

log = logging.getLogger(__name__)
QUEUE = "dead.conflicts"
MAX_KEPT = 100_000  # while the service is down: the oldest dead letters of any kind go first


async def watch(rt: Runtime) -> None:
    """Declare and bind the queue (on the broker's robust channel: restored with it), then
    consume it."""
    channel = rt.broker.channel
    if channel is None:
        raise RuntimeError("the broker is not connected")
    queue = await channel.declare_queue(rt.broker.name(QUEUE), durable=True, arguments={
        "x-queue-type": "quorum", "x-max-length": MAX_KEPT})
    await queue.bind(rt.broker.exchanges["dead"])
    rt.broker.queues[QUEUE] = queue  # a strong reference: aio-pika restores what it holds

    async def on_dead(message: AbstractIncomingMessage) -> None:
        await on_dead_letter(rt, message)

    await rt.broker.consume_raw(queue, on_dead)


async def on_dead_letter(rt: Runtime, message: AbstractIncomingMessage) -> None:
    if message.type not in (ConflictDetected.__name__, TransferJob.__name__):
        return
    try:
        msg = decode(message.type, message.body)
    except (UnknownMessage, ValidationError):
        log.error("a dead-lettered %s could not be read: left in the dead letters", message.type)
        return
    error = str((message.headers or {}).get("x-error") or "dead-lettered")
    if isinstance(msg, ConflictDetected):
        await notice_failed(rt, msg, f"the detection was dead-lettered: {error}")
    elif isinstance(msg, TransferJob) and msg.kind is ChangeKind.RESOLVED and msg.conflict_id:
        if await rt.state.conflicts.mark_apply_failed(msg.conflict_id, error):
            log.error("decision on conflict %s not applied: %s", msg.conflict_id, error)


async def notice_failed(rt: Runtime, msg: ConflictDetected, error: str) -> None:
    """Show on the conflict that its notices are not all sent (recording it first if the
    detection never was)."""
    store = rt.state.conflicts
    record = await store.get(msg.conflict_id)
    if record is None:
        if await rt.state.connector(msg.connector_id) is None:
            return  # the connector is gone: nobody to tell
        await store.create(msg)
        record = await store.get(msg.conflict_id)
    if record is None or notices_done(record):
        return
    if await store.mark_notice_failed(msg.conflict_id, error):
        log.error("notices of conflict %s failed: %s", msg.conflict_id, error)
