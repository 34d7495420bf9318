"""What the broker and the claims of long work share (shared/messaging/broker.py and claims.py):
a message kept so it can be published again (`Claimed`), the header counting the deliveries
it spent while claimed (`ATTEMPTS`), the "put it back" signal (`Defer`) and its "put it aside
until the connector is resumed" form (`Park`), and the broker's
redelivery side as the claims see it (`Redelivery`). The claims depend on this, not on the
broker, so the broker can consume with claims without an import loop.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aio_pika.abc import AbstractIncomingMessage

ATTEMPTS = "x-scaidrive-attempts"  # deliveries spent while claimed (x-delivery-count restarts)


class Defer(Exception):
    """Put the message back at the end of its queue, without counting it as a failed delivery."""


class Park(Defer):
    """Move the message out of its lane until its connector is resumed (shared/messaging/
    parking.py): a paused connector's work must neither be lost nor cycle through a lane.

    `noted`: notes the connector as having parked work; called again once the message is in its
    parked queue (the raiser noted it before), so the scheduler finds it even if it forgot the
    connector while this message was on its way there (shared/app/held_work.py)."""

    def __init__(self, connector_id: str,
                 noted: Callable[[], Awaitable[object]] | None = None):
        super().__init__(f"connector {connector_id} is held")
        self.connector_id = connector_id
        self.noted = noted


@dataclass
class Claimed:
    """What is needed to publish the message again."""
    body: str
    type: str
    exchange: str
    routing_key: str
    headers: dict[str, Any]
    attempts: int
    content_type: str = "application/json"

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> Claimed:
        headers = {k: v for k, v in (message.headers or {}).items()
                   if k != "x-delivery-count" and isinstance(v, (str, int, float, bool))}
        # surrogateescape: a poison message's undecodable bytes go to the dead letters intact
        return cls(message.body.decode("utf-8", "surrogateescape"), message.type or "",
                   message.exchange or "", message.routing_key or "", headers,
                   int(headers.pop(ATTEMPTS, 0)), message.content_type or "application/json")


class Redelivery(Protocol):
    """The broker's side of redelivering (shared/messaging/broker.py: `Broker`)."""

    @property
    def delivery_limit(self) -> int: ...

    async def republish(self, m: Claimed) -> None: ...

    async def requeue_fresh(self, message: AbstractIncomingMessage) -> None: ...

    async def park(self, m: Claimed, park: Park) -> None: ...

    async def dead_letter_claimed(self, m: Claimed, error: str,
                                  error_class: str = "") -> None: ...
