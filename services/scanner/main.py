"""Scanner: consumes scan commands, publishes change events."""
from __future__ import annotations

from services.scanner import handlers
from shared.app import hot_loop
from shared.app.runtime import Runtime, serve
from shared.messaging.claims import LongWork

# Scans are long and list whole trees: a couple at a time per process is plenty.
SCANS_AT_ONCE = 2


async def start(rt: Runtime) -> None:
    # A scan of a big tree can outlast RabbitMQ's consumer_timeout: every scan is claimed.
    await rt.broker.consume(rt.broker.queues["scan"],
                            lambda msg, _raw: handlers.on_scan(rt, msg), prefetch=SCANS_AT_ONCE,
                            long_work=LongWork(rt.claims, lambda _msg: True, SCANS_AT_ONCE))


def main() -> None:
    hot_loop.use_uvloop()  # a scan publishes one message per changed file
    serve("scanner", start)


if __name__ == "__main__":
    main()
