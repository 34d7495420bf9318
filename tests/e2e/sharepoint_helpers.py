"""Shaping SharePoint libraries in the Graph emulator and creating connectors on them."""
from __future__ import annotations

import asyncio
import hashlib
import json
import uuid

import aio_pika

from tests.fixtures.stack import AMQP_URL

HOST = "contoso.sharepoint.com"


def new_site(graph):
    return graph.add_site(HOST, f"/sites/team-{uuid.uuid4().hex[:8]}")


def site_url(site) -> str:
    return f"https://{site.hostname}{site.path}"


def sp_body(graph, site, library: str, share: str, **extra) -> dict:
    return {"kind": "sharepoint", "name": share, "tenant_id": graph.tenant_id,
            "client_id": graph.client_id, "client_secret": graph.client_secret,
            "site_url": site_url(site), "library": library, "target_share": share,
            "schedule": "1h"} | extra


def new_sp_connector(api, graph, site, library: str, share: str, **extra) -> dict:
    assert api.post("/shares", json={"name": share}).status_code == 201
    resp = api.post("/connectors", json=sp_body(graph, site, library, share, **extra))
    assert resp.status_code == 201, resp.text
    return resp.json()


def library_tree(graph, drive) -> dict[str, str]:
    """library path -> sha256 of every file the emulator holds in `drive`."""
    t = graph.tenant
    with t.lock:
        return {t.path_of(drive, i).lstrip("/"): hashlib.sha256(i.data).hexdigest()
                for i in drive.items.values() if not i.deleted and not i.is_folder}


class EventTap:
    """A queue bound to the platform events exchange, as the ScaiDrive platform would bind."""

    def __init__(self, ns: str, routing_key: str, exchange: str = "events"):
        self.ns, self.key, self.exchange = ns, routing_key, exchange
        self.name = f"{ns}.test-tap-{uuid.uuid4().hex[:6]}"

    async def open(self) -> EventTap:
        self.conn = await aio_pika.connect(AMQP_URL)
        ch = await self.conn.channel()
        self.queue = await ch.declare_queue(self.name, auto_delete=True)
        await self.queue.bind(f"{self.ns}.{self.exchange}", self.key)
        return self

    async def get(self, timeout: float = 30) -> dict:  # noqa: ASYNC109 - a poll deadline
        deadline = asyncio.get_running_loop().time() + timeout
        while (msg := await self.queue.get(fail=False)) is None:  # basic.get does not wait
            assert asyncio.get_running_loop().time() < deadline, f"no {self.key} event"
            await asyncio.sleep(0.2)
        await msg.ack()
        return json.loads(msg.body)

    async def close(self) -> None:
        await self.conn.close()
