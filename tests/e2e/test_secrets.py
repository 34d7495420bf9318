"""Secrets at rest and in flight: a whole run of every kind of connector, logging at DEBUG,
leaves no secret in any log line, span (attributes, events, exceptions: every OTLP export as
sent), Redis value, audit entry or broker message; and the stored
secrets move to a new key (`rotate-key`) without a connector noticing.

A stack of its own: its logs, Redis keys and broker traffic hold this module's runs only, and
its services can be restarted with other keys without disturbing the other tests.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import aio_pika
import httpx
import pytest
import redis
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr

from shared.config.connector_model import SECRET_FIELDS
from shared.config.secrets import SecretBox
from shared.store.key_rotation import rotate_secrets
from shared.store.state import State
from tests.e2e.helpers import found_in
from tests.e2e.sharepoint_helpers import new_site, sp_body
from tests.fixtures.net import wait_port
from tests.fixtures.otlp import OtlpReceiver
from tests.fixtures.stack import AMQP_URL, REDIS_URL, ROOT, Stack, sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()
EXCHANGES = {"commands": ["scan", "run", "conflict"], "changes": ["#"], "events": ["#"],
             "dead": [""], "transfer": []}  # transfer: bound to each connector's id


@pytest.fixture(scope="module")
def world(s3, graph, smtp, tmp_path_factory):
    otlp = OtlpReceiver().start()
    st = Stack(s3, tmp_path_factory.mktemp("secrets-logs"), graph, smtp,
               SCAIDRIVE_SECRET_KEY=KEY_A,
               SCAIDRIVE_API_READONLY_TOKEN="ro-" + secrets.token_urlsafe(24),
               SCAIDRIVE_TRACE_PATHS="true", OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
               OTEL_BSP_SCHEDULE_DELAY="100", OTEL_METRIC_EXPORT_INTERVAL="500")
    st.otlp = otlp
    try:
        yield st.start()
    finally:
        st.stop()
        otlp.stop()


def encrypted_pem(graph, password: str) -> str:
    """The emulator's app certificate with its key under a password."""
    pem = Path(graph.cert_path).read_bytes()
    key = serialization.load_pem_private_key(pem, None)
    sealed = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.BestAvailableEncryption(password.encode()))
    cert = pem[pem.index(b"-----BEGIN CERTIFICATE-----"):]
    return (sealed + cert).decode()


@pytest.fixture(scope="module")
def connectors(world, samba, graph, ldap_server):
    """SMB with an LDAP directory (email strategy), SharePoint by client secret, SharePoint by
    certificate with a password: each secret kind the store holds. name -> connector id."""
    api, tag = world.api(), secrets.token_hex(3)
    folder = world.folder = f"secrets-{tag}"
    samba.write_file(f"{folder}/a.txt", b"smb one", owner="alice")
    site = new_site(graph)
    drive = graph.add_library(site, "Documents")
    graph.put_file(drive, "sp/one.txt", b"sharepoint one")
    world.cert_password = "CertPw-" + secrets.token_urlsafe(12)
    ldap = {"url": ldap_server.url, "base_dn": ldap_server.base_dn,
            "bind_dn": ldap_server.bind_dn, "bind_password": ldap_server.bind_password}
    bodies = {
        "smb": {"name": "smb", "server": f"smb://127.0.0.1:{samba.port}/{samba.share}/{folder}",
                "username": samba.username, "password": samba.password, "target_share": "smb",
                "schedule": "1h", "identity_mapping": {"strategy": "email", "ldap": ldap}},
        "sp-secret": sp_body(graph, site, "Documents", "sp-secret", target_prefix="s"),
        "sp-cert": sp_body(graph, site, "Documents", "sp-cert", client_secret=None,
                           certificate=encrypted_pem(graph, world.cert_password),
                           certificate_password=world.cert_password)}
    ids = {}
    for name, body in bodies.items():
        # Buckets live in the session's S3 server: names of their own, not another test's.
        share = body["target_share"] = f"{name}-{tag}"
        assert api.post("/shares", json={"name": share}).status_code == 201
        resp = api.post("/connectors", json={k: v for k, v in body.items() if v is not None})
        assert resp.status_code == 201, resp.text
        ids[name] = resp.json()["id"]
    world.drive = drive
    return ids


# --- the broker tap -----------------------------------------------------------------------------

async def _open_taps(ns: str, cids: list[str]) -> list[str]:
    """A queue on every exchange (the platform's events, every command, every change and
    transfer job of these connectors, dead letters), left to fill during the runs."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        names = []
        for exchange, keys in EXCHANGES.items():
            q = await ch.declare_queue(f"{ns}.test-tap-{exchange}", durable=False)
            for key in keys or cids:
                await q.bind(f"{ns}.{exchange}", key)
            names.append(q.name)
        return names


async def _drain(names: list[str]) -> list[str]:
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        seen = []
        for name in names:
            q = await ch.get_queue(name)
            while (msg := await q.get(no_ack=True, fail=False)) is not None:
                seen.append(json.dumps({"headers": {k: str(v) for k, v in
                                                    (msg.headers or {}).items()},
                                        "body": msg.body.decode(errors="replace")}))
        return seen


# --- where secrets must not be ------------------------------------------------------------------

def redis_values(ns: str) -> dict[str, str]:
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True, encoding_errors="surrogateescape")
    read = {"string": r.get, "hash": r.hgetall, "list": lambda k: r.lrange(k, 0, -1),
            "set": lambda k: sorted(r.smembers(k)),
            "zset": lambda k: r.zrange(k, 0, -1, withscores=True),
            "stream": lambda k: r.xrange(k)}
    return {key: json.dumps(read[r.type(key)](key), default=str) for key in r.scan_iter(f"{ns}:*")}


def the_secrets(world, samba, graph, ldap_server) -> dict[str, str]:
    return {"SMB password": samba.password, "SharePoint client secret": graph.client_secret,
            "LDAP bind password": ldap_server.bind_password,
            "certificate password": world.cert_password, "admin token": world.token,
            "read-only token": world.env["SCAIDRIVE_API_READONLY_TOKEN"],
            "S3 secret key": world.env["SCAIDRIVE_S3_SECRET_KEY"],
            "Fernet key": KEY_A}


def sign_in_and_out(world) -> None:
    """Both tokens through the console login, and a wrong one, so their paths are logged."""
    with httpx.Client(base_url=f"http://127.0.0.1:{world.port}/api/v1") as browser:
        for token in (world.token, world.env["SCAIDRIVE_API_READONLY_TOKEN"], "wrong-" * 4):
            browser.post("/session", json={"token": token, "name": "checker"})
            browser.get("/connectors")
            browser.delete("/session", headers={"X-Requested-With": "scaidrive-console"})


def test_no_secret_in_logs_redis_audit_or_messages(world, connectors, samba, graph,
                                                   ldap_server):
    api = world.api()
    for cid in connectors.values():
        assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    taps = asyncio.run(_open_taps(world.ns, list(connectors.values())))
    # A second run with new files on both sides, every exchange tapped from its start.
    samba.write_file(f"{world.folder}/b.txt", b"smb two", owner="alice")
    graph.put_file(world.drive, "sp/two.txt", b"sharepoint two")
    for cid in connectors.values():
        view = sync_and_wait(api, cid)
        assert view["status"]["run"]["outcome"] == "success", view["status"]
        assert view["status"]["progress"]["files_transferred"] >= 1
    sign_in_and_out(world)
    messages = asyncio.run(_drain(taps))
    assert len(messages) >= 8  # commands, changes, transfer jobs and events were seen
    time.sleep(1)  # the last spans and metrics are exported (100 ms / 500 ms batches)
    exports = world.otlp.exports()
    assert all(any(cid in e for e in exports) for cid in connectors.values())  # grep sees spans
    places = {f"log line {i}": line for i, line in enumerate(world.logs().splitlines())}
    places |= {f"redis {k}": v for k, v in redis_values(world.ns).items()}
    places |= {"audit log": api.get("/audit").text}
    places |= {f"message {i}": m for i, m in enumerate(messages)}
    places |= {f"OTLP export {i}": e for i, e in enumerate(exports)}
    assert found_in(the_secrets(world, samba, graph, ldap_server), places) == []


# --- key rotation -------------------------------------------------------------------------------

def restart(world: Stack, keys: str) -> None:
    """Every service again, with SCAIDRIVE_SECRET_KEY=keys (as an operator rotating would)."""
    for proc in world.procs.values():
        proc.terminate()
    for proc in world.procs.values():
        proc.wait(30)
    world.procs.clear()
    world.env = world.env | {"SCAIDRIVE_SECRET_KEY": keys}
    world.start()
    wait_port(world.port, proc=world.procs["api"])


def rotate_key(world: Stack, keys: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "rotate-key"], cwd=ROOT,
                          env=world.env | {"SCAIDRIVE_SECRET_KEY": keys},
                          capture_output=True, text=True, timeout=60)


async def _rotate(ns: str, keys: str):
    state = State.connect(REDIS_URL, ns)
    try:
        return await rotate_secrets(state, SecretBox(SecretStr(keys)))
    finally:
        await state.close()


def stored(world: Stack) -> dict[str, dict]:
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    return {k: json.loads(r.get(k)) for k in r.scan_iter(f"{world.ns}:connector:*")}


def config(view: dict) -> dict:
    return {k: v for k, v in view.items() if k != "status"}


def test_rotate_key_moves_every_secret_to_the_new_key(world, connectors):
    api = world.api()
    for cid in connectors.values():
        wait_run(api, cid)
    before = {cid: config(api.get(f"/connectors/{cid}").json()) for cid in connectors.values()}
    restart(world, f"{KEY_B},{KEY_A}")  # the new key first, the old one still there

    untouched = stored(world)
    wrong = rotate_key(world, Fernet.generate_key().decode())  # not a key they were sealed with
    assert wrong.returncode == 2 and "Nothing was changed" in wrong.stderr
    assert all(f"({cid})" in wrong.stderr for cid in connectors.values())
    assert stored(world) == untouched

    report = asyncio.run(_rotate(world.ns, f"{KEY_B},{KEY_A}"))
    assert (report.connectors, report.rotated, report.current) == (3, 5, 0)
    again = rotate_key(world, f"{KEY_B},{KEY_A}")  # safe to run twice
    assert again.returncode == 0 and "rotated 0 secret(s) of 3 connector(s)" in again.stdout
    b_only = SecretBox(SecretStr(KEY_B))
    opened = [b_only.open(doc[f]) for doc in stored(world).values()
              for f in SECRET_FIELDS if doc.get(f)]
    assert len(opened) == 5  # SMB and LDAP passwords, client secret, certificate and password

    restart(world, KEY_B)  # the old key is gone: every connector still works
    for cid in connectors.values():
        assert sync_and_wait(api, cid)["status"]["run"]["outcome"] == "success"
        assert config(api.get(f"/connectors/{cid}").json()) == before[cid]
