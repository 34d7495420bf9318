"""Identity service: consumes change events (one queue per connector, so one connector's huge
initial sync does not hold another's changes back), publishes transfer jobs with their owner."""
from __future__ import annotations

from typing import cast

from services.identity import handlers
from shared.app import hot_loop
from shared.app.connector_consumers import ConnectorConsumers
from shared.app.runtime import Runtime, serve
from shared.contracts import Contract, FileChanged, FileChanges
from shared.messaging.broker import expecting

PREFETCH = 64


async def start(rt: Runtime) -> None:
    identities = handlers.Identities(rt)
    hot_loop.freeze_startup_objects()  # before the first message: nothing of one is frozen
    async def on_change(msg: Contract) -> None:
        await handlers.on_change(rt, identities, cast(FileChanged | FileChanges, msg))

    await ConnectorConsumers(rt, "identity", expecting((FileChanged, FileChanges), on_change),
                             prefetch=PREFETCH).start()


def main() -> None:
    hot_loop.use_uvloop()
    serve("identity", start)


if __name__ == "__main__":
    main()
