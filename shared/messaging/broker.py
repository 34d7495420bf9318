"""RabbitMQ: the whole topology, confirmed publishing and the consumer loop, in one place.

Exchanges ({ns} = SCAIDRIVE_NAMESPACE):
  {ns}.commands  direct   scan -> {ns}.scan (scanner), run -> {ns}.runs (scheduler),
                          conflict -> {ns}.conflicts (conflict service)
  {ns}.changes   topic    {lane}.{k}.{connector} -> {ns}.identity.{lane}.{k} (identity)
  {ns}.transfer  direct   {lane}.{k} -> {ns}.transfer.{lane}.{k} (transfer workers)
  {ns}.events    topic    platform events (sync.completed, ...), for the ScaiDrive platform
  {ns}.dead      fanout   -> {ns}.dead (kept for operators), {ns}.dead.runs (closes runs)
  (default)               {ns}.parked.{connector}: a paused connector's work (parking.py)
The identity and transfer stages share a fixed set of sharded lanes (shared/messaging/lanes.py)
instead of a queue per connector.
Work queues are durable quorum queues with a delivery limit and the dead-letter exchange.

SCAIDRIVE_AMQP_URL may list a cluster's nodes: the connection moves to another node when its own
dies, restoring all of the above and the consumers, and publishes wait for it meanwhile
(shared/messaging/failover.py). Queues are declared without `x-quorum-initial-group-size`: RabbitMQ
places a quorum queue on every cluster node up to its `quorum_cluster_size` (3.10), and the
argument, once set, could never change (a different value is PRECONDITION_FAILED on re-declare).

`Defer` (shared/messaging/redelivery.py) is importable from here: a handler raises it to put its
message back without spending a delivery. `expecting` gives a handler written for one contract
to a queue, which hands over whatever contract it decoded.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from opentelemetry import trace
from pydantic import ValidationError

from shared.config.settings import split_amqp_urls
from shared.contracts import Contract, UnknownMessage, decode
from shared.messaging import failover, outages, parking
from shared.messaging.claims import LongWork
from shared.messaging.lanes import STAGES, Lane, Lanes
from shared.messaging.redelivery import ATTEMPTS, Claimed, Defer, Park
from shared.observability import telemetry

log = logging.getLogger(__name__)
tracer = trace.get_tracer("scaidrive.broker")  # a proxy: follows the provider set at startup
Handler = Callable[[Contract, AbstractIncomingMessage], Awaitable[None]]
M = TypeVar("M", bound=Contract)


def expecting(model: type[M] | tuple[type[M], ...],
              handler: Callable[[M], Awaitable[None]]) -> Callable[[Contract], Awaitable[None]]:
    """`handler`, for a queue that carries `model` messages only (one contract, or a tuple of
    them). Another contract there was routed wrong: it fails like any handler error (retried,
    then dead-lettered)."""
    models = model if isinstance(model, tuple) else (model,)

    async def handle(msg: Contract) -> None:
        if not isinstance(msg, models):
            raise TypeError(f"{' or '.join(m.__name__ for m in models)} expected, "
                            f"got {type(msg).__name__}")
        await handler(msg)

    return handle


class Broker:
    def __init__(self, url: str, namespace: str, delivery_limit: int = 5,
                 lanes: Lanes | None = None):
        self.url = url  # one AMQP URL or several, comma-separated (a cluster's nodes)
        self.ns = namespace
        self.delivery_limit = delivery_limit
        self.lanes = lanes or Lanes()
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None
        self.channel: AbstractChannel | None = None
        self.exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        self.queues: dict[str, AbstractQueue] = {}  # strong refs: robust channels restore these
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def name(self, *parts: str) -> str:
        return ".".join((self.ns, *parts))

    async def connect(self) -> Broker:
        self.connection = await failover.connect(split_amqp_urls(self.url), f"scaidrive-{self.ns}")
        self.channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        await self._declare()
        return self

    async def close(self) -> None:
        if self.connection:
            await self.connection.close()

    def _connection(self) -> aio_pika.abc.AbstractRobustConnection:
        if self.connection is None:
            raise RuntimeError("the broker is not connected: connect() first")
        return self.connection

    def control_channel(self) -> AbstractChannel:
        """The channel that declares the topology and republishes."""
        return self._channel()

    def _channel(self) -> AbstractChannel:
        if self.channel is None:
            raise RuntimeError("the broker is not connected: connect() first")
        return self.channel

    async def new_channel(self) -> AbstractChannel:
        """A channel of its own on the connection (a consumer's: prefetch is per channel)."""
        return await self._connection().channel()

    async def _declare(self) -> None:
        ch = self._channel()
        kinds = {"commands": "direct", "changes": "topic", "transfer": "direct",
                 "events": "topic", "dead": "fanout"}
        for short, kind in kinds.items():
            self.exchanges[short] = await ch.declare_exchange(
                self.name(short), kind, durable=True)
        for queue in ("dead", "dead.runs"):
            q = await ch.declare_queue(self.name(queue), durable=True,
                                       arguments={"x-queue-type": "quorum"})
            await q.bind(self.exchanges["dead"])
            self.queues[queue] = q
        await self._work_queue("scan", "commands", "scan")
        await self._work_queue("runs", "commands", "run")
        await self._work_queue("conflicts", "commands", "conflict")
        for stage, exchange in STAGES.items():
            for short, _lane, key in self.lanes.queues(stage):
                await self._work_queue(short, exchange, key)

    async def _work_queue(self, short: str, exchange: str, key: str) -> AbstractQueue:
        q = await self._channel().declare_queue(self.name(short), durable=True, arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.name("dead"),
        })
        await q.bind(self.exchanges[exchange], routing_key=key)
        self.queues[short] = q
        return q

    async def lane_depths(self) -> dict[str, int]:
        """Messages ready in each lane's shard ({stage}.{lane}.{k} -> count), for the
        operators' gauges."""
        return await self.depths([short for stage in STAGES
                                  for short, _lane, _key in self.lanes.queues(stage)])

    async def depths(self, shorts: list[str]) -> dict[str, int]:
        """Messages ready (not taken by a consumer) in these queues: passive declares on a
        throwaway channel."""
        channel = await self.new_channel()
        try:
            depths = {}
            for short in shorts:
                q = await channel.declare_queue(self.name(short), passive=True)
                depths[short] = q.declaration_result.message_count or 0
            return depths
        finally:
            if not channel.is_closed:
                await channel.close()

    async def park(self, m: Claimed, park: Park) -> None:
        await parking.park(self, m, park.connector_id)
        if park.noted is not None:  # noted again, now that it is there (see `Park`)
            await park.noted()

    async def unpark(self, connector_id: str) -> tuple[int, bool]:
        return await parking.unpark(self, connector_id)

    async def delete_parked(self, connector_id: str) -> None:
        await parking.delete(self, connector_id)

    # --- publishing ---------------------------------------------------------------------

    async def publish(self, exchange: str, routing_key: str, msg: Contract,
                      headers: dict | None = None, message_id: str | None = None) -> None:
        """Returns once the broker confirmed the message (persistent, routed to a queue).
        `message_id`: a stable id consumers can deduplicate by (AMQP `message_id`)."""
        message = aio_pika.Message(
            message_id=message_id,
            body=msg.model_dump_json().encode(),
            content_type="application/json",
            type=type(msg).__name__,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={**telemetry.inject(), **(headers or {})},
        )
        mandatory = exchange != "events"  # platform events may have no consumer yet
        await failover.confirmed(lambda: self.exchanges[exchange].publish(
            message, routing_key, mandatory=mandatory), self._connection())

    async def publish_work(self, exchange: str, msg: Contract, lane: Lane,
                           connector_id: str) -> None:
        """A connector's work, to its shard of `lane` at the stage `exchange` feeds."""
        await self.publish(exchange, self.lanes.routing_key(exchange, connector_id, lane), msg)

    async def publish_many(self, exchange: str, items: list[tuple[str, Contract]],
                           window: int = 256) -> None:
        """Keep up to `window` unconfirmed publishes in flight instead of one round trip each."""
        for start in range(0, len(items), window):
            batch = items[start:start + window]
            await asyncio.gather(*(self.publish(exchange, key, m) for key, m in batch))

    # --- consuming ----------------------------------------------------------------------

    async def consume(self, queue: AbstractQueue, handler: Handler, prefetch: int,
                      channel: AbstractChannel | None = None,
                      long_work: LongWork | None = None) -> tuple[AbstractQueue, str]:
        """Consume on its own channel (prefetch is per consumer); returns (queue, tag) to cancel.
        Messages `long_work` wants are claimed and acked at once (shared/messaging/claims.py)."""
        channel = channel or await self.new_channel()
        await channel.set_qos(prefetch_count=prefetch)
        # Declared (passively) on this robust channel, not merely looked up: only queues the
        # channel declared get their consumers restored after a broker restart (aio-pika).
        q = await channel.declare_queue(queue.name, passive=True)
        self.queues[f"consumer:{queue.name}"] = q

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._deliver(message, handler, long_work)

        tag = await q.consume(on_message)
        self._consumers.append((q, tag))
        return q, tag

    async def consume_lanes(self, stage: str, handler: Handler, prefetch: dict[Lane, int],
                            long_work: LongWork | None = None) -> None:
        """Every shard of the stage's lanes: one channel per lane, so the bulk lane's long
        batches never hold the main lane's prefetch."""
        for lane, count in prefetch.items():
            channel = await self.new_channel()
            for short, in_lane, _key in self.lanes.queues(stage):
                if in_lane == lane:
                    await self.consume(self.queues[short], handler, count, channel, long_work)

    async def cancel(self, queue: AbstractQueue, tag: str) -> None:
        """Stop one consumer; messages already in hand still finish and are acked."""
        if (queue, tag) in self._consumers:
            self._consumers.remove((queue, tag))
        await queue.cancel(tag)

    async def drain(self, timeout_s: float) -> bool:
        """Stop taking messages and let the ones in hand finish and be acked (a worker being
        scaled down or redeployed should not hand back a half-done 10 GB transfer)."""
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):  # some were cancelled already (pause)
                await queue.cancel(tag)
        self._consumers.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    async def consume_raw(self, queue: AbstractQueue,
                          callback: Callable[[AbstractIncomingMessage], Awaitable[None]]) -> str:
        """For the dead-letter queue: the callback may fail, the message is acked regardless
        (re-dead-lettering a dead letter would loop)."""
        channel = await self.new_channel()
        await channel.set_qos(prefetch_count=16)
        q = await channel.declare_queue(queue.name, passive=True)  # restored on reconnect
        self.queues.setdefault(f"consumer:{queue.name}", q)

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                await callback(message)
            except Exception:
                log.exception("dead-letter callback failed; message left in %s", queue.name)
                await message.nack(requeue=False)
                return
            await message.ack()

        return await q.consume(on_message)

    async def _deliver(self, message: AbstractIncomingMessage, handler: Handler,
                       long_work: LongWork | None = None) -> None:
        self._inflight += 1
        self._idle.clear()
        try:
            await self._handle(message, handler, long_work)
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._idle.set()

    async def _handle(self, message: AbstractIncomingMessage, handler: Handler,
                      long_work: LongWork | None = None) -> None:
        try:
            msg = decode(message.type, message.body)
        except (UnknownMessage, ValidationError) as exc:
            await self.dead_letter(message, exc)
            return
        ctx = telemetry.extract(message.headers)
        with tracer.start_as_current_span(f"handle {message.type}", context=ctx,
                                          kind=trace.SpanKind.CONSUMER,
                                          attributes=_messaging(message)) as span:
            try:
                if long_work is not None and long_work.wants(msg):
                    await long_work.handle(self, message, msg, lambda: handler(msg, message))
                else:
                    await handler(msg, message)
            except Exception as exc:
                if not isinstance(exc, Defer):
                    telemetry.record_error(span, exc)
                await self._failed(message, exc)
                return
        if not message.processed:
            await message.ack()

    async def _failed(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        if message.processed:  # claimed and acked already: the claim's expiry takes over
            log.error("claimed %s left to its claim's expiry: %s: %s", message.type,
                      type(exc).__name__, exc)
        elif isinstance(exc, Park):  # its connector is paused: out of the lane until resumed
            await self.park(Claimed.of(message), exc)
            await message.ack()
        elif isinstance(exc, Defer):
            await self.requeue_fresh(message)
        elif outages.is_outage(exc):  # S3 or Redis down: wait for it, attempts unspent
            log.warning("dependency unavailable, %s put back: %s: %s", message.type,
                        type(exc).__name__, exc)
            await asyncio.sleep(outages.WAIT_S)
            await self.requeue_fresh(message)
        else:  # a crash in a handler: bounded retries, then dead letter
            await self._retry_or_dead_letter(message, exc)

    async def _retry_or_dead_letter(self, message: AbstractIncomingMessage, exc: Exception):
        count = (message.headers or {}).get("x-delivery-count", 0)
        if not isinstance(count, (int, float, Decimal, str, bytes, bytearray)):
            raise TypeError(f"x-delivery-count is not a number: {count!r}")
        deliveries = int(count) + 1
        if deliveries >= self.delivery_limit:
            await self.dead_letter(message, exc)
            return
        log.warning("handler failed (delivery %d of %d), retrying: %s: %s", deliveries,
                    self.delivery_limit, type(exc).__name__, exc)
        await asyncio.sleep(min(2 ** deliveries, 30))  # back off: no hot redelivery loop
        await message.nack(requeue=True)

    async def dead_letter(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        """Park the message in the dead-letter queues with its error, then ack the original."""
        await self.dead_letter_claimed(Claimed.of(message), f"{type(exc).__name__}: {exc}",
                                       error_class=type(exc).__name__)
        await message.ack()

    async def dead_letter_claimed(self, m: Claimed, error: str, error_class: str = "") -> None:
        log.error("dead-lettering %s: %s", m.type, error)
        headers = m.headers | {
            "x-error": error[:1000], "x-error-class": error_class or error.split(":", 1)[0],
            "x-original-routing-key": m.routing_key, "x-original-exchange": m.exchange}
        await failover.confirmed(lambda: self.exchanges["dead"].publish(
            self.as_message(m, headers), routing_key=""), self._connection())

    async def requeue_fresh(self, message: AbstractIncomingMessage) -> None:
        """Back to the end of its queue with its delivery count reset; then ack the original."""
        try:
            _ = message.channel  # raises once its channel closed (while the message waited)
        except aio_pika.exceptions.ChannelInvalidStateError:
            return  # the broker redelivers the original: a copy would be a duplicate
        await self.republish(Claimed.of(message))
        await message.ack()

    async def republish(self, m: Claimed) -> None:
        """Publish a message again as it came (a claimed one carries its attempts so far)."""
        headers = m.headers | ({ATTEMPTS: m.attempts} if m.attempts else {})

        async def publish() -> None:
            exchange = await self._channel().get_exchange(m.exchange, ensure=False)
            await exchange.publish(self.as_message(m, headers), routing_key=m.routing_key)

        await failover.confirmed(publish, self._connection())

    async def confirmed(self, publish: Callable[[], Awaitable[object]]) -> None:
        """Run a publish, waiting out a failover (shared/messaging/failover.py)."""
        await failover.confirmed(publish, self._connection())

    @staticmethod
    def as_message(m: Claimed, headers: dict) -> aio_pika.Message:
        return aio_pika.Message(body=m.body.encode("utf-8", "surrogateescape"), type=m.type,
                                headers=headers, content_type=m.content_type,
                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT)


def _messaging(message: AbstractIncomingMessage) -> dict[str, str | int]:
    """OpenTelemetry's messaging attributes of a delivery (semantic conventions 1.x): the broker,
    the queue it came from, the operation, the message type; never its body."""
    attrs: dict[str, str | int] = {"messaging.system": "rabbitmq",
                                   "messaging.operation": "process",
                                   "messaging.message.type": message.type or ""}
    if message.routing_key:
        attrs["messaging.rabbitmq.destination.routing_key"] = message.routing_key
    if message.exchange:
        attrs["messaging.destination.name"] = message.exchange
    count = (message.headers or {}).get("x-delivery-count")
    if isinstance(count, int):
        attrs["messaging.rabbitmq.delivery_count"] = count
    return attrs
