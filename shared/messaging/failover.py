"""Broker failover: one robust AMQP connection that moves to another node of a RabbitMQ cluster
when the node it uses dies, and publishes that wait for it instead of failing.

SCAIDRIVE_AMQP_URL lists the nodes (shared/config/settings.py `split_amqp_urls`). `connect` opens
the first that answers, trying the list again until one does within `STARTUP_WAIT_S`: a service
started while the broker is down (a host booting, a broker restart) waits for it instead of
exiting. aio-pika's robust connection reconnects to its own URL only; here, when
the connection is lost and its node has not answered again within `GRACE_S`, the connection's URL
is switched to the next node of the list (round robin, `GRACE_S` per node), and aio-pika's own
recovery does the rest on that node: the channels reopen (publisher confirms included) and
re-declare their exchanges, queues and bindings, and re-register their consumers. The broker keeps
strong references to all of them (shared/messaging/broker.py), as aio-pika only restores what is
still referenced. Quorum queues replicate over the cluster, so a queue outlives its node, and
deliveries left unacked on the dead node are redelivered (handlers are idempotent).

`confirmed` runs a publish again while the connection is being restored, within `PUBLISH_WAIT_S`:
a publish that failed with the connection may have reached the broker, so it can arrive twice
(at least once, never lost). URLs hold passwords: logs name nodes by host:port only.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aio_pika
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError, DeliveryError
from aio_pika.robust_connection import RobustConnection
from tenacity import AsyncRetrying, RetryCallState, stop_after_delay, wait_fixed
from yarl import URL

log = logging.getLogger(__name__)
T = TypeVar("T")

GRACE_S = 3.0  # how long a lost node may take to come back before the next one is tried
RECONNECT_INTERVAL_S = 1.0  # between two connection attempts
CONNECT_TIMEOUT_S = 5.0  # one connection attempt (a node that does not answer at all)
PUBLISH_WAIT_S = 60.0  # how long a publish waits for the connection to come back
STARTUP_WAIT_S = 120.0  # how long a starting service waits for a node to answer
WATCH_STEP_S = 0.25


def node_label(url: str) -> str:
    """host:port of an AMQP URL, without its credentials (safe to log)."""
    parsed = URL(url)
    port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
    return f"{parsed.host}:{port}"


class NodeOrder:
    """Which node to use: the current one until it has been lost for `grace_s`, then the next
    one of the list (wrapping around), each given `grace_s` in turn. Pure: the clock is passed."""

    def __init__(self, urls: list[str], grace_s: float = GRACE_S, start: int = 0):
        if not urls:
            raise ValueError("no broker URL")
        self.urls = urls
        self.grace_s = grace_s
        self.index = start % len(urls)
        self._since: float | None = None  # when the current node was lost or chosen

    @property
    def current(self) -> str:
        return self.urls[self.index]

    def lost(self, now: float) -> None:
        self._since = now

    def found(self) -> None:
        self._since = None

    def due(self, now: float) -> str | None:
        """The next node's URL if the current one had its grace and more than one node is
        known; None to keep trying the current one."""
        if self._since is None or len(self.urls) < 2 or now - self._since < self.grace_s:
            return None
        self.index = (self.index + 1) % len(self.urls)
        self._since = now
        return self.current


class FailoverConnection(RobustConnection):
    """A robust connection whose URL follows `NodeOrder` while it is disconnected."""

    def __init__(self, nodes: NodeOrder, **kwargs: Any):
        super().__init__(URL(nodes.current), **kwargs)
        self.nodes = nodes
        self._watch: asyncio.Task[None] | None = None

    @property
    def closing(self) -> bool:
        return self._close_called or self.is_closed

    async def _on_connection_close(self, closing: asyncio.Future) -> None:
        await super()._on_connection_close(closing)
        if not self.closing and (self._watch is None or self._watch.done()):
            self._watch = self.loop.create_task(self._follow())

    async def _on_connected(self) -> None:
        await super()._on_connected()
        self.nodes.found()

    async def _follow(self) -> None:
        """While disconnected, move the URL on to the next node when the current one is due."""
        self.nodes.lost(time.monotonic())
        log.warning("lost the broker node %s; reconnecting", node_label(self.nodes.current))
        while not self.closing and not self.connected.is_set():
            await asyncio.sleep(WATCH_STEP_S)
            url = self.nodes.due(time.monotonic())
            if url is not None and not self.connected.is_set():
                log.warning("broker node not back; trying %s", node_label(url))
                self.url = URL(url)
        if self.connected.is_set():
            log.info("connected to the broker node %s", node_label(str(self.url)))

    async def close(self, exc: Any = asyncio.CancelledError) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await super().close(exc)


async def connect(urls: list[str], name: str, grace_s: float = GRACE_S,
                  wait_s: float = STARTUP_WAIT_S) -> FailoverConnection:
    """A failover connection to the first node of `urls` that answers, the list tried again
    every RECONNECT_INTERVAL_S until `wait_s` has passed; then the last node's error."""
    retrying = AsyncRetrying(stop=stop_after_delay(wait_s), wait=wait_fixed(RECONNECT_INTERVAL_S),
                             reraise=True, before_sleep=_waiting)
    return await retrying(_first_answering, urls, name, grace_s)


def _waiting(_state: RetryCallState) -> None:
    log.warning("no broker node answers yet; trying again")


async def _first_answering(urls: list[str], name: str, grace_s: float) -> FailoverConnection:
    """Each node of `urls` tried once, in order; the last one's error if none answers."""
    error: Exception | None = None
    for start, url in enumerate(urls):
        conn = FailoverConnection(NodeOrder(urls, grace_s, start),
                                  client_properties={"connection_name": name},
                                  reconnect_interval=RECONNECT_INTERVAL_S)
        try:
            await conn.connect(timeout=CONNECT_TIMEOUT_S)
        except Exception as exc:
            await conn.close()
            log.warning("broker node %s does not answer: %s", node_label(url), type(exc).__name__)
            error = exc
            continue
        log.info("connected to the broker node %s", node_label(url))
        return conn
    assert error is not None
    raise error


def _connection_lost(exc: BaseException, conn: aio_pika.abc.AbstractConnection) -> bool:
    """Did `exc` come from the connection going away (rather than from the message)?"""
    if isinstance(exc, DeliveryError):  # returned unroutable: the message's own fault
        return False
    if isinstance(exc, (ConnectionError, ChannelInvalidStateError)):
        return True
    if isinstance(exc, asyncio.CancelledError):  # aiormq cancels pending confirms on close
        task = asyncio.current_task()
        return bool(task is not None and not task.cancelling() and not conn.connected.is_set())
    return isinstance(exc, AMQPError) and not conn.connected.is_set()


async def confirmed(publish: Callable[[], Awaitable[T]], conn: aio_pika.abc.AbstractConnection,
                    wait_s: float = PUBLISH_WAIT_S) -> T:
    """`publish()`, run again after the connection is back if it failed with the connection,
    until `wait_s` has passed (then its last error)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return await publish()
        except BaseException as exc:
            left = deadline - time.monotonic()
            if left <= 0 or not _connection_lost(exc, conn):
                raise
            log.warning("publish interrupted by the broker connection (%s); retrying",
                        type(exc).__name__)
        await _ready(conn, deadline - time.monotonic())


async def _ready(conn: aio_pika.abc.AbstractConnection, left: float) -> None:
    """Until the connection is up again (or `left` seconds passed), then a short pause for its
    channels to be restored."""
    try:
        await asyncio.wait_for(conn.connected.wait(), max(left, 0.01))
    except TimeoutError:
        return
    await asyncio.sleep(min(RECONNECT_INTERVAL_S, max(left, 0)) / 4)
