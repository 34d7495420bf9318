"""The store against the real Redis: each test gets its own namespace, removed afterwards."""
import secrets

import pytest
import redis.asyncio as aioredis

from shared.store.store import Store
from tests.fixtures.stack import REDIS_URL


@pytest.fixture
async def state():
    ns = "u" + secrets.token_hex(4)
    st = Store(aioredis.from_url(REDIS_URL, decode_responses=True), ns)
    yield st
    keys = [k async for k in st.r.scan_iter(f"{ns}:*")]
    if keys:
        await st.r.delete(*keys)
    await st.close()
