"""What a service process holds (settings, the store, broker, storage) and how it starts and
stops. The store opens its own Redis client from the settings (shared/store/store.py)."""
from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared.config import settings as settings_mod
from shared.config.secrets import SecretBox
from shared.config.settings import Settings
from shared.messaging.broker import Broker
from shared.messaging.claims import Claims
from shared.messaging.lanes import Lanes
from shared.observability import telemetry
from shared.storage.s3 import Storage
from shared.store.store import Store

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    state: Store
    broker: Broker
    box: SecretBox
    _storage: Storage | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # background loops of the service

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            self._storage = Storage(self.settings)
        return self._storage

    @functools.cached_property
    def claims(self) -> Claims:
        return Claims(self.state.claim_records, self.settings.claim_ttl_s)

    @classmethod
    async def open(cls, settings: Settings) -> Runtime:
        state = await Store.open(settings)
        broker = await Broker(settings.amqp_url.get_secret_value(), settings.namespace,
                              settings.delivery_limit,
                              Lanes(settings.lanes_main, settings.lanes_bulk)).connect()
        return cls(settings, state, broker, SecretBox(settings.secret_key))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if not await self.broker.drain(self.settings.drain_timeout_s):
            log.warning("stopping with work in hand: it will be redelivered")
        await self.broker.close()
        await self.state.close()


def serve(service: str, start: Callable[[Runtime], Awaitable[None]],
          settings_cls: type[Settings] = Settings) -> None:
    """Entry point of `python -m services.<name>`: run `start`, then wait for SIGTERM/SIGINT."""
    settings = settings_mod.load(settings_cls)
    telemetry.setup(service, settings.log_level, settings.trace_paths)
    asyncio.run(_main(service, start, settings))


async def _main(service: str, start: Callable[[Runtime], Awaitable[None]],
                settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    rt = await Runtime.open(settings)
    try:
        await start(rt)
        log.info("%s started", service)
        await stop.wait()
    finally:
        log.info("%s stopping", service)
        await rt.close()
        telemetry.shutdown()
