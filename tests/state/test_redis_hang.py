"""A Redis that stops answering without closing its connections (SIGSTOP: a hung server, or a
network path that drops packets with no reset) fails the store's calls after the reply timeout
and its retries, instead of hanging the worker for good; once it answers again the same client
works. A private redis-server: the shared one is never stopped."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest

from shared.store.store import Store
from tests.fixtures.net import free_port, stop_group, wait_port

REPLY_TIMEOUT_S = 0.5


@pytest.fixture
def private_redis(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, proc=proc)
        yield proc, f"redis://127.0.0.1:{port}/0"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        stop_group(proc)


async def test_a_server_that_stops_answering_fails_the_call_instead_of_hanging(private_redis):
    proc, url = private_redis
    store = Store.connect(url, "hang", reply_timeout_s=REPLY_TIMEOUT_S)
    try:
        await store.set_status("c1", paused="0")
        os.kill(proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(Exception) as failure:
            # Without a reply timeout this waits forever; the guard makes that a failure.
            await asyncio.wait_for(store.status("c1"), timeout=60)
        assert not isinstance(failure.value, asyncio.TimeoutError), "the call hung"
        assert "Timeout" in type(failure.value).__name__, repr(failure.value)
        assert time.monotonic() - started < 30  # 7 attempts of 0.5 s and ~5 s of backoff
        os.kill(proc.pid, signal.SIGCONT)
        assert (await store.status("c1")) == {"paused": "0"}  # the same client, working again
    finally:
        await store.close()
