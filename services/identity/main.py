"""Identity service: consumes change events, publishes transfer jobs with their owner."""
from __future__ import annotations

from shared.runtime import Runtime, serve
from services.identity import handlers


async def start(rt: Runtime) -> None:
    identities = handlers.Identities(rt)
    await rt.broker.consume(rt.broker.queues["identity"],
                            lambda msg, _raw: handlers.on_change(rt, identities, msg), prefetch=64)


def main() -> None:
    serve("identity", start)


if __name__ == "__main__":
    main()
