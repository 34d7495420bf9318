"""Parking: a paused connector's work, out of the shared lanes until it is resumed.

The lanes are shared by every connector (shared/messaging/lanes.py), so a paused connector's
messages cannot simply be left unconsumed; put back, they would go round the lane for as long as
the pause lasts. A consumer that meets one raises `Park`: the message is published to the
connector's own queue `{ns}.parked.{connector}` (declared then, confirmed), then acked. On resume
the scheduler moves them back (`unpark`: republish to the lane each came from, confirmed, then
ack), and the queue is deleted once empty. A crash between a publish and its ack leaves a copy
in both places: consumers are idempotent (at-least-once).

Which connectors have parked work is kept in Redis by the caller (shared/app/held_work.py): this
module knows the broker only.

The parked queue is a durable *classic* queue (persistent messages): it must be deleted only if
empty, atomically, so a message parked while it is being emptied is never deleted with it, and
quorum queues refuse `if-empty` deletes (RabbitMQ closes the whole connection: NOT_IMPLEMENTED).
On a cluster it lives on one node: if that node is down, resuming waits for it (the work is on
its disk), which parked work can afford.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import aio_pika
from aio_pika.abc import AbstractChannel

from shared.messaging.redelivery import Claimed

log = logging.getLogger(__name__)
PARK_ATTEMPTS = 5
FROM_EXCHANGE = "x-original-exchange"
FROM_KEY = "x-original-routing-key"


class Broker(Protocol):
    """What parking needs of the broker (shared/messaging/broker.py: `Broker`)."""

    def name(self, *parts: str) -> str: ...

    def control_channel(self) -> AbstractChannel: ...

    async def new_channel(self) -> AbstractChannel: ...

    def as_message(self, m: Claimed, headers: dict) -> aio_pika.Message: ...

    async def confirmed(self, publish: Callable[[], Awaitable[object]]) -> None: ...

    async def republish(self, m: Claimed) -> None: ...


def queue_name(broker: Broker, connector_id: str) -> str:
    return broker.name("parked", connector_id)


async def park(broker: Broker, m: Claimed, connector_id: str) -> None:
    """Publish `m` to the connector's parked queue, confirmed and routed. The scheduler's
    `unpark` deletes the queue once it is empty, which may fall between our declare and our
    publish: the (mandatory) publish then comes back unroutable; declare again, publish again.
    Before, that error escaped the consumer and left the message unacked in the worker: the
    resumed run stalled until its lease ran out (seen in CI)."""
    name = queue_name(broker, connector_id)
    channel = broker.control_channel()
    headers = m.headers | {FROM_EXCHANGE: m.exchange, FROM_KEY: m.routing_key}
    message = broker.as_message(m, headers)
    for attempt in range(1, PARK_ATTEMPTS + 1):
        await channel.declare_queue(name, durable=True)  # classic: see the module's docstring
        try:
            await broker.confirmed(
                lambda: channel.default_exchange.publish(message, name, mandatory=True))
            return
        except aio_pika.exceptions.DeliveryError:
            if attempt == PARK_ATTEMPTS:
                raise
            log.info("parked queue %s deleted meanwhile: declared again", name)


async def unpark(broker: Broker, connector_id: str) -> tuple[int, bool]:
    """Move the connector's parked messages back to their lanes: (how many, whether its parked
    queue is gone — the caller may then forget the connector)."""
    channel = await broker.new_channel()
    name = queue_name(broker, connector_id)
    moved = 0
    try:
        try:
            queue = await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return 0, True
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            parked = Claimed.of(message)
            headers = dict(parked.headers)
            parked.exchange = str(headers.pop(FROM_EXCHANGE, ""))
            parked.routing_key = str(headers.pop(FROM_KEY, ""))
            parked.headers = headers
            await broker.republish(parked)
            await message.ack()
            moved += 1
        try:
            await queue.delete(if_unused=False, if_empty=True)
        except aio_pika.exceptions.ChannelClosed:  # parked again meanwhile: next time
            return moved, False
        return moved, True
    finally:
        if not channel.is_closed:
            await channel.close()


async def delete(broker: Broker, connector_id: str) -> None:
    """The connector is deleted: its parked work goes with it."""
    await broker.control_channel().queue_delete(queue_name(broker, connector_id))
