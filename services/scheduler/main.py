"""Scheduler: starts runs when connectors are due or asked for, closes runs nobody else can."""
from __future__ import annotations

import asyncio
import logging

from services.scheduler import handlers
from shared.app.runtime import Runtime, serve
from shared.contracts import RunRequested
from shared.messaging.broker import expecting
from shared.messaging.claims import reap
from shared.observability import metrics
from shared.store.daily_counters import record_queue_depths

log = logging.getLogger(__name__)
QUEUE_POLL_S = 15


async def start(rt: Runtime) -> None:
    on_run = expecting(RunRequested, lambda msg: handlers.on_run_requested(rt, msg))
    await rt.broker.consume(rt.broker.queues["runs"], lambda msg, _raw: on_run(msg), prefetch=8)
    await rt.broker.consume_raw(rt.broker.queues["dead.runs"],
                                lambda raw: handlers.on_dead_letter(rt, raw))
    rt.tasks.append(asyncio.create_task(_tick_forever(rt)))
    depths: dict[str, int] = {}
    metrics.observe_queue_depth(lambda: dict(depths))
    rt.tasks.append(asyncio.create_task(_watch_queues(rt, depths)))


async def _tick_forever(rt: Runtime) -> None:
    while True:
        try:
            await handlers.tick(rt)
            await reap(rt.claims, rt.broker)  # long work whose worker died: republished
        except Exception:  # keep ticking: Redis or the broker may be back next time
            log.exception("scheduler tick failed")
        await asyncio.sleep(rt.settings.scheduler_tick_s)


async def _watch_queues(rt: Runtime, depths: dict[str, int]) -> None:
    """Transfer queue depth per connector, for the metrics gauge and the hour's deepest (the
    console's chart), read from RabbitMQ."""
    while True:
        try:
            for c in await rt.state.connectors():
                depth = await rt.broker.queue_depth(c.id)
                if depth is not None:
                    depths[c.id] = depth
            await record_queue_depths(rt.state, depths)
        except Exception:
            log.warning("could not read queue depths", exc_info=True)
        await asyncio.sleep(QUEUE_POLL_S)


def main() -> None:
    serve("scheduler", start)


if __name__ == "__main__":
    main()
