"""Conflict service: consumes `{ns}.conflicts` (detections from transfer, decisions from the
API) and `{ns}.alerts` (alert mails, once per incident: services/conflicts/alerts.py)."""
from __future__ import annotations

from services.conflicts import alerts, handlers
from shared.app.runtime import Runtime, serve
from shared.config.settings import ConflictSettings


async def start(rt: Runtime) -> None:
    conflicts = handlers.Conflicts(rt)
    await rt.broker.consume(rt.broker.queues["conflicts"],
                            lambda msg, _raw: conflicts.on_message(msg), prefetch=8)
    await conflicts.start()  # notices sent from Redis under leases; dead letters shown
    await alerts.start(rt)  # alert mails: the events queue and the sweep


def main() -> None:
    serve("conflicts", start, ConflictSettings)


if __name__ == "__main__":
    main()
