"""A caller's deadline stops a store call, in every Redis mode: a transfer job's patience for a
slot, a stopping service's cancel. redis-py sends with `asyncio.wait_for`, which on Python 3.11
drops a cancellation arriving as the send finishes; the store's connections send under
`asyncio.timeout` instead (shared/store/connection.py). Without that the calls below went on
as if never cancelled (the first one, most times)."""
from __future__ import annotations

import asyncio
import time


async def test_a_deadline_around_store_calls_ends_them(state):
    await state.throttles.acquire_slot("c1", "busy", 1, 30)  # every ask below answers "no"
    deadlines = [0.0003 * (1 + i % 7) for i in range(60)]
    for deadline in deadlines:
        started = time.monotonic()
        asks = 0
        try:
            async with asyncio.timeout(deadline):
                while time.monotonic() - started < 2:
                    asks += 1
                    assert not await state.throttles.acquire_slot("c1", "waiter", 1, 30)
        except TimeoutError:
            continue
        raise AssertionError(f"a {deadline * 1000:.1f} ms deadline did not stop the calls: "
                             f"{asks} asks in 2 s")
    assert await state.throttles.slot_holders("c1") == 1  # an ask cut off took no slot
