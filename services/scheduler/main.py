"""Scheduler: starts runs when connectors are due or asked for, closes runs nobody else can."""
from __future__ import annotations

import asyncio
import logging
import time

from services.scheduler import handlers, usage_recount
from shared.app.runtime import Runtime, serve
from shared.contracts import RunRequested
from shared.messaging.broker import expecting
from shared.messaging.claims import reap
from shared.observability import metrics
from shared.store.daily_counters import record_queue_depths

log = logging.getLogger(__name__)


async def start(rt: Runtime) -> None:
    on_run = expecting(RunRequested, lambda msg: handlers.on_run_requested(rt, msg))
    await rt.broker.consume(rt.broker.queues["runs"], lambda msg, _raw: on_run(msg), prefetch=8)
    await rt.broker.consume_raw(rt.broker.queues["dead.runs"],
                                lambda raw: handlers.on_dead_letter(rt, raw))
    depths: dict[str, int] = {}
    metrics.observe_queue_depth(lambda: dict(depths))
    rt.tasks.append(asyncio.create_task(_tick_forever(rt, depths)))
    rt.tasks.append(asyncio.create_task(usage_recount.run_forever(rt)))  # recounts, 90% warning


async def _tick_forever(rt: Runtime, depths: dict[str, int]) -> None:
    swept = 0.0
    while True:
        try:
            if time.monotonic() - swept >= rt.settings.scheduler_sweep_s:
                swept = time.monotonic()
                await _sweep(rt, depths)
            await handlers.tick(rt)
            await reap(rt.claims, rt.broker)  # long work whose worker died: republished
        except Exception:  # keep ticking: Redis or the broker may be back next time
            log.exception("scheduler tick failed")
        await asyncio.sleep(rt.settings.scheduler_tick_s)


async def _sweep(rt: Runtime, depths: dict[str, int]) -> None:
    """Every connector; and the files each has waiting (its run's published files not yet
    done: the lanes are shared, so RabbitMQ cannot tell) for the metrics gauge and the hour's
    deepest (the console's chart; only connectors with something waiting are written)."""
    waiting = await handlers.sweep(rt)
    depths.clear()
    depths.update(waiting)
    await record_queue_depths(rt.state, {cid: n for cid, n in waiting.items() if n})


def main() -> None:
    serve("scheduler", start)


if __name__ == "__main__":
    main()
