"""Identity service: consumes change events from the identity stage's lanes (so one connector's
huge initial sync does not hold another's changes back: shared/messaging/lanes.py), publishes
transfer jobs with their owner."""
from __future__ import annotations

from typing import cast

from services.identity import handlers
from shared.app import hot_loop
from shared.app.runtime import Runtime, serve
from shared.contracts import Contract, FileChanged, FileChanges, Lane
from shared.messaging.broker import expecting

PREFETCH: dict[Lane, int] = {"main": 64, "bulk": 4}  # a bulk message is a batch of up to 500 files


async def start(rt: Runtime) -> None:
    identities = handlers.Identities(rt)
    hot_loop.freeze_startup_objects()  # before the first message: nothing of one is frozen
    async def on_change(msg: Contract) -> None:
        await handlers.on_change(rt, identities, cast(FileChanged | FileChanges, msg))

    handle = expecting((FileChanged, FileChanges), on_change)
    await rt.broker.consume_lanes("identity", lambda msg, _raw: handle(msg), PREFETCH)


def main() -> None:
    hot_loop.use_uvloop()
    serve("identity", start)


if __name__ == "__main__":
    main()
