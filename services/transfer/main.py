"""Transfer worker: competing consumers of the transfer stage's lanes (shared/messaging/lanes.py).

Run N of these for N-fold throughput. A paused connector's work is parked as it arrives, and a
batch under way stops between files within a second of the pause (shared/app/held_work.py).
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from services.transfer.handlers import Transfers
from shared.app import hot_loop
from shared.app.runtime import Runtime, serve
from shared.app.source_pool import Sources
from shared.contracts import Contract, TransferBatch, TransferJob
from shared.messaging.broker import expecting
from shared.messaging.claims import LongWork

log = logging.getLogger(__name__)
DROP_DELETED_S = 30


async def start(rt: Runtime) -> None:
    hot_loop.load_smb_backend()  # not inside the first jobs; frozen with the rest below
    pool = ThreadPoolExecutor(max_workers=rt.settings.transfer_concurrency,
                              thread_name_prefix="transfer")
    transfers = Transfers(rt, Sources(rt.box, rt.settings), pool)

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

    transfers.watch.start()  # pause stops a batch between files
    handle = expecting((TransferJob, TransferBatch), on_message)
    # Main lane: as many messages as files in flight; bulk: batches of 500 files each, two are
    # enough to keep the threads busy without holding the main lane's work behind them.
    await rt.broker.consume_lanes("transfer", lambda msg, _raw: handle(msg), {
        "main": rt.settings.transfer_concurrency,
        "bulk": max(1, min(2, rt.settings.transfer_concurrency))}, long_work=long_work)
    rt.tasks.append(asyncio.create_task(_drop_deleted(rt, transfers.sources)))


async def _drop_deleted(rt: Runtime, sources: Sources) -> None:
    """Close the sessions of connectors deleted since (their work is dropped as it arrives)."""
    while True:
        await asyncio.sleep(DROP_DELETED_S)
        try:
            for cid in await rt.state.connector_pages.deleted_of(sources.ids()):
                sources.drop(cid)
        except Exception as exc:
            log.warning("could not look for deleted connectors: %s", exc)


def main() -> None:
    hot_loop.use_uvloop()
    serve("transfer", start)


if __name__ == "__main__":
    main()
