"""One consumer per connector queue, kept in step with the connectors (created, paused,
resumed, deleted). Per-connector queues are how stages share fairly: a connector with a million
files queued does not stand in front of another connector's ten."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractChannel, AbstractQueue

from shared.app.runtime import Runtime
from shared.config.connector_model import Connector
from shared.contracts import Contract
from shared.messaging.broker import Defer
from shared.messaging.claims import LongWork

log = logging.getLogger(__name__)
POLL_S = 1.0


class ConnectorConsumers:
    def __init__(self, rt: Runtime, stage: str, handler: Callable[[Contract], Awaitable[None]],
                 prefetch: int, wanted: Callable[[Connector], Awaitable[bool]] | None = None,
                 on_gone: Callable[[str], None] | None = None,
                 long_work: LongWork | None = None):
        self.rt = rt
        self.stage = stage  # "identity" or "transfer": the queue is {ns}.{stage}.{cid}
        self.handler = handler
        self.prefetch = prefetch
        self.wanted = wanted
        self.on_gone = on_gone
        self.long_work = long_work  # shared by all the connectors' queues: one per process
        self.channels: dict[str, AbstractChannel] = {}
        self.active: dict[str, tuple[AbstractQueue, str]] = {}
        self.wake = asyncio.Event()

    async def handle(self, msg, _raw) -> None:
        try:
            await self.handler(msg)
        except Defer:
            self.wake.set()  # e.g. paused: stop taking this connector's messages now
            raise

    async def sync(self) -> None:
        connectors = await self.rt.state.connectors()
        wanted = {c.id for c in connectors if self.wanted is None or await self.wanted(c)}
        for cid in wanted - self.active.keys():
            queue = await self.rt.broker.connector_queue(self.stage, cid)
            channel = self.channels.get(cid) or await self.rt.broker.new_channel()
            self.channels[cid] = channel
            self.active[cid] = await self.rt.broker.consume(
                queue, self.handle, prefetch=self.prefetch, channel=channel,
                long_work=self.long_work)
        for cid in self.active.keys() - wanted:
            queue, tag = self.active.pop(cid)
            await self.rt.broker.cancel(queue, tag)  # messages in hand finish and ack
        known = {c.id for c in connectors}
        for cid in list(self.channels):
            if cid not in known and cid not in self.active:
                channel = self.channels.pop(cid)
                await channel.close()
                if self.on_gone:
                    self.on_gone(cid)

    async def run(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception:
                log.exception("could not update the %s consumers", self.stage)
            try:
                await asyncio.wait_for(self.wake.wait(), POLL_S)
            except TimeoutError:
                pass
            self.wake.clear()

    async def start(self) -> None:
        await self.sync()
        self.rt.tasks.append(asyncio.create_task(self.run()))
