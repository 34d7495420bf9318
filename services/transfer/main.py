"""Transfer worker: competing consumers of the per-connector transfer queues.

Run N of these for N-fold throughput. A paused connector's queue is not consumed (its jobs
wait in RabbitMQ); jobs already prefetched when the pause lands go back to the queue.
"""
from __future__ import annotations

import importlib
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from services.transfer.handlers import Transfers
from shared.app import hot_loop
from shared.app.connector_consumers import ConnectorConsumers
from shared.app.runtime import Runtime, serve
from shared.app.source_pool import Sources
from shared.contracts import Contract, TransferBatch, TransferJob
from shared.messaging.broker import expecting
from shared.messaging.claims import LongWork


async def start(rt: Runtime) -> None:
    # The SMB backend's import (smbprotocol, spnego, cryptography: ~0.5 s of CPU) at start,
    # not inside the first jobs; and so its objects are frozen with the rest below.
    importlib.import_module("shared.sources.smb.source")
    pool = ThreadPoolExecutor(max_workers=rt.settings.transfer_concurrency,
                              thread_name_prefix="transfer")
    transfers = Transfers(rt, Sources(rt.box, rt.settings), pool)

    async def running(c) -> bool:
        return not await rt.state.paused(c.id)

    long_bytes = rt.settings.long_job_mb * 1024 * 1024

    def long(msg: Contract) -> bool:
        return (isinstance(msg, TransferJob) and msg.version is not None
                and msg.version.size >= long_bytes)

    long_work = LongWork(rt.claims, long, room=min(rt.settings.long_jobs_per_worker,
                                                   rt.settings.transfer_concurrency))
    hot_loop.freeze_startup_objects()  # before the first message: nothing of one is frozen
    async def on_message(msg: Contract) -> None:
        if isinstance(msg, TransferBatch):
            await transfers.on_batch(msg)
        else:
            await transfers.on_job(cast(TransferJob, msg))

    consumers = ConnectorConsumers(rt, "transfer", expecting((TransferJob, TransferBatch),
                                                             on_message),
                                   prefetch=rt.settings.transfer_concurrency, wanted=running,
                                   on_gone=transfers.sources.drop, long_work=long_work)
    transfers.still_wanted = lambda cid: cid in consumers.active  # pause stops a batch
    await consumers.start()


def main() -> None:
    hot_loop.use_uvloop()
    serve("transfer", start)


if __name__ == "__main__":
    main()
