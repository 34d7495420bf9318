"""Transfer worker: competing consumers of the per-connector transfer queues.

Run N of these for N-fold throughput. A paused connector's queue is not consumed (its jobs
wait in RabbitMQ); jobs already prefetched when the pause lands go back to the queue.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from aio_pika.abc import AbstractChannel, AbstractQueue

from shared.broker import Defer
from shared.runtime import Runtime, serve
from services.transfer.handlers import Sources, Transfers

log = logging.getLogger(__name__)
POLL_S = 1.0


class Consumers:
    """Keeps one consumer per active connector queue, in step with pause/resume/delete."""

    def __init__(self, rt: Runtime, transfers: Transfers):
        self.rt = rt
        self.transfers = transfers
        self.channels: dict[str, AbstractChannel] = {}
        self.active: dict[str, tuple[AbstractQueue, str]] = {}
        self.wake = asyncio.Event()

    async def handle(self, job, _raw) -> None:
        try:
            await self.transfers.on_job(job)
        except Defer:
            self.wake.set()  # paused: stop taking this connector's jobs now, not at next poll
            raise

    async def sync(self) -> None:
        connectors = await self.rt.state.connectors()
        wanted = {c.id for c in connectors if not await self.rt.state.paused(c.id)}
        for cid in wanted - self.active.keys():
            queue = await self.rt.broker.transfer_queue(cid)
            channel = self.channels.get(cid) or await self.rt.broker.connection.channel()
            self.channels[cid] = channel
            self.active[cid] = await self.rt.broker.consume(
                queue, self.handle, prefetch=self.rt.settings.transfer_concurrency,
                channel=channel)
        for cid in self.active.keys() - wanted:
            queue, tag = self.active.pop(cid)
            await self.rt.broker.cancel(queue, tag)  # jobs in hand finish and ack
        known = {c.id for c in connectors}
        for cid in list(self.channels):
            if cid not in known and cid not in self.active:
                self.transfers.sources.drop(cid)

    async def run(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception:
                log.exception("could not update transfer consumers")
            try:
                await asyncio.wait_for(self.wake.wait(), POLL_S)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()


async def start(rt: Runtime) -> None:
    pool = ThreadPoolExecutor(max_workers=rt.settings.transfer_concurrency,
                              thread_name_prefix="transfer")
    consumers = Consumers(rt, Transfers(rt, Sources(rt.box, rt.settings), pool))
    await consumers.sync()
    rt.tasks.append(asyncio.create_task(consumers.run()))


def main() -> None:
    serve("transfer", start)


if __name__ == "__main__":
    main()
