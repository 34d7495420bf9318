"""Scanner: consumes scan commands, publishes change events."""
from __future__ import annotations

from services.scanner import handlers
from shared.app import hot_loop
from shared.app.runtime import Runtime, serve
from shared.app.source_pool import Sources
from shared.contracts import ScanRequested
from shared.messaging.broker import expecting
from shared.messaging.claims import LongWork


async def start(rt: Runtime) -> None:
    # SCAIDRIVE_SCAN_CONCURRENCY scans at a time: most of a small connector's scan is waiting
    # for its server. A scan of a big tree can outlast RabbitMQ's consumer_timeout: every scan
    # is claimed. Sources stay open between a connector's runs (one logon per config version).
    at_once = rt.settings.scan_concurrency
    hot_loop.load_smb_backend()  # not inside the first scan; frozen with the rest below
    sources = handlers.ScanSources(Sources(rt.box, rt.settings))
    on_scan = expecting(ScanRequested, lambda msg: handlers.on_scan(rt, msg, sources))
    hot_loop.freeze_startup_objects()  # before the first message: nothing of one is frozen
    await rt.broker.consume(rt.broker.queues["scan"],
                            lambda msg, _raw: on_scan(msg), prefetch=at_once,
                            long_work=LongWork(rt.claims, lambda _msg: True, at_once))


def main() -> None:
    hot_loop.use_uvloop()  # a scan publishes one message per changed file
    serve("scanner", start)


if __name__ == "__main__":
    main()
