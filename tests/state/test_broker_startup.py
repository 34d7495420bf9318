"""A service started while the broker is down (a host booting, a broker restart, a supervisor
restarting a service mid-outage) waits for it instead of exiting: `failover.connect` tries the
nodes again until one answers within its wait, and only then gives up with the node's error.
Real RabbitMQ behind the tests' TCP proxy, which refuses connections while cut, as a node that
is down does. (The two-way chaos run found a scheduler restarted during a broker restart that
exited at once: no run started again.)"""
from __future__ import annotations

import asyncio
import time

import pytest
from aiormq.exceptions import AMQPConnectionError

from shared.messaging import failover
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.stack import AMQP_URL


def behind(proxy: TcpProxy) -> str:
    return AMQP_URL.replace(AMQP_URL.split("@", 1)[1].split("/", 1)[0], f"127.0.0.1:{proxy.port}")


async def test_a_service_started_while_the_broker_is_down_connects_once_it_is_up():
    proxy = TcpProxy(5672)
    proxy.cut()
    connecting = asyncio.create_task(failover.connect([behind(proxy)], "startup-test"))
    await asyncio.sleep(3)
    assert not connecting.done()  # still waiting: not failed, not connected
    proxy.restore()
    conn = await asyncio.wait_for(connecting, 30)
    try:
        channel = await conn.channel()
        queue = await channel.declare_queue(exclusive=True)
        assert queue.name  # the broker answers through it
    finally:
        await conn.close()


async def test_a_broker_that_never_comes_gives_its_error_after_the_wait():
    proxy = TcpProxy(5672)
    proxy.cut()
    started = time.monotonic()
    with pytest.raises((AMQPConnectionError, ConnectionError, OSError)):
        await failover.connect([behind(proxy)], "startup-test", wait_s=3)
    assert 2 <= time.monotonic() - started < 20
