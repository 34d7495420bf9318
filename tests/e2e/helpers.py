"""Building source trees on the Samba share, following a run, checking what reached the bucket
and the broker's queue depths, and grepping what the services left behind (logs, exports) for
what must not be there."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path

from minio import Minio


def write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_random(root: Path, rel: str, size: int) -> None:
    """A large file written in 1 MiB pieces (tests stay lean too)."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


def random_tree(samba, folder: str, files: int, *, size: int, dirs: int) -> Path:
    """`files` files of `size` random bytes under share folder `folder`, spread over `dirs`
    subfolders (d00/f0000.bin, d01/f0001.bin, ...): a share's existing files, last written an
    hour before a connector first reads them (not racily clean: the next run reads none of
    them again unless it changed)."""
    root = samba.share_dir / folder
    for i in range(files):
        write(root, f"d{i % dirs:02d}/f{i:04d}.bin", os.urandom(size))
    return dated_back(root)


def dated_back(root: Path) -> Path:
    """Every file under `root` last written an hour ago, as a share's existing files are: not
    racily clean (shared/sync/model.py), so a later run does not read them again to compare."""
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(dirpath, name), ns=(an_hour_ago, an_hour_ago))
    return root


def run_of(api, cid: str) -> dict:
    """The connector's current (or last) run, {} before its first."""
    return api.get(f"/connectors/{cid}").json()["status"]["run"] or {}


def wait_done(api, cid: str, at_least: int, timeout: float = 120) -> dict:
    """Until the run has done `at_least` jobs, failing should it finish first (a fault or a
    pause must land mid-run): the run as it then stood."""
    deadline = time.monotonic() + timeout
    while (run := run_of(api, cid)).get("jobs_done", 0) < at_least:
        assert run.get("phase") != "finished", f"the run ended too soon: {run}"
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    return run


def disk_tree(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under root. A file gone between the listing and
    its read (a write's hidden temp renamed over its final name) is left out: the caller's next
    look sees the name it became."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = Path(dirpath) / name
            try:
                with open(full, "rb") as f:
                    out[full.relative_to(root).as_posix()] = _sha(f)
            except FileNotFoundError:
                continue
    return out


def empty_dirs(root: Path) -> set[str]:
    """Relative paths of the folders under root that hold nothing at all."""
    return {Path(d).relative_to(root).as_posix() for d, dirs, files in os.walk(root)
            if not dirs and not files and Path(d) != root}


def bucket_markers(client: Minio, bucket: str) -> set[str]:
    """Folder markers in the bucket (two-way empty folders), without their trailing "/"."""
    return {o.object_name.rstrip("/") for o in client.list_objects(bucket, recursive=True)
            if o.object_name.endswith("/")}


def bucket_tree(client: Minio, bucket: str, prefix: str = "") -> dict[str, str]:
    """relative path -> sha256 of every object but folder markers (files, as `disk_tree`)."""
    out = {}
    for obj in client.list_objects(bucket, prefix=prefix or None, recursive=True):
        if obj.object_name.endswith("/"):
            continue
        resp = client.get_object(bucket, obj.object_name)
        try:
            out[obj.object_name[len(prefix):].lstrip("/")] = _sha(resp)
        finally:
            resp.close()
            resp.release_conn()
    return out


def open_uploads(client: Minio, bucket: str) -> list:
    return list(client._list_multipart_uploads(bucket).uploads)


def upload_records(ns: str, cid: str) -> dict[str, str]:
    """The connector's records of multipart uploads begun and not ended (upload_records)."""
    import redis

    from tests.fixtures.stack import REDIS_URL
    return redis.Redis.from_url(REDIS_URL, decode_responses=True).hgetall(f"{ns}:uploads:{cid}")


def wait_upload_started(client: Minio, bucket: str, timeout: float = 60) -> None:
    """Until a multipart upload is open in the bucket: a worker is mid-transfer."""
    deadline = time.monotonic() + timeout
    while not open_uploads(client, bucket):
        assert time.monotonic() < deadline, "upload never started"
        time.sleep(0.02)


def wait_parts_sent(client: Minio, bucket: str, key: str, parts: int,
                    timeout: float = 60) -> int:
    """Until the open upload of `key` holds parts 1..`parts`: how many it holds from 1 on
    without a gap then (at least `parts`)."""
    deadline = time.monotonic() + timeout
    while True:
        for upload in open_uploads(client, bucket):
            if upload.object_name == key and upload.upload_id:
                numbers = {p.part_number for p in client._list_parts(
                    bucket, key, upload.upload_id).parts}
                held = next(n for n in range(1, len(numbers) + 2) if n not in numbers) - 1
                if held >= parts:
                    return held
        assert time.monotonic() < deadline, f"{parts} parts of {key} never reached the bucket"
        time.sleep(0.05)


def _sha(stream) -> str:
    h = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        h.update(chunk)
    stream.close()
    return h.hexdigest()


def new_connector(api, samba, name: str, folder: str, **extra) -> dict:
    """Create share `name` and a connector mirroring share folder `folder` into it."""
    assert api.post("/shares", json={"name": name}).status_code == 201
    body = {"name": name, "kind": "smb",
            "server": f"smb://127.0.0.1:{samba.port}/{samba.share}/{folder}",
            "username": samba.username, "password": samba.password,
            "target_share": name, "schedule": "1h"} | extra
    resp = api.post("/connectors", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def found_in(needles: dict[str, str], places: dict[str, str]) -> list[str]:
    """One "<label> in <place>" for every needle (a secret, a file name) found in a place's text
    (a log line, an OTLP export, a Redis value...): empty when nothing leaked."""
    return [f"{label} in {where}" for label, value in needles.items()
            for where, text in places.items() if value in text]


def stored_values(ns: str) -> dict[str, str]:
    """Every Redis value of a stack's namespace, as text (key -> value), whatever its type."""
    import redis

    from tests.fixtures.stack import REDIS_URL
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True, encoding_errors="surrogateescape")
    reads = {"string": r.get, "hash": r.hgetall, "list": lambda k: r.lrange(k, 0, -1),
             "zset": lambda k: r.zrange(k, 0, -1), "set": lambda k: sorted(r.smembers(k))}
    values = {}
    for key in r.scan_iter(f"{ns}:*"):
        kind = r.type(key)
        if kind == "none":
            continue  # gone since the scan saw it (a lease or a marker that expired)
        value = reads[kind](key)
        values[key] = value if isinstance(value, str) else json.dumps(value)
    return values


def owners_in_bucket(s3, bucket: str) -> dict[str, tuple[str, str, str]]:
    """Each object's owner as written on it: (ScaiDrive owner, how mapped, source owner)."""
    client, out = s3.client(), {}
    for obj in client.list_objects(bucket, recursive=True):
        meta = client.stat_object(bucket, obj.object_name).metadata
        out[obj.object_name] = (meta["x-amz-meta-scaidrive-owner"],
                                meta["x-amz-meta-scaidrive-owner-mapping"],
                                meta["x-amz-meta-source-owner"])
    return out


def queue_depths(ns: str, names: list[str]) -> dict[str, int | None]:
    """Messages ready in each queue (None: no such queue)."""
    import aio_pika

    from tests.fixtures.stack import AMQP_URL

    async def read() -> dict[str, int | None]:
        conn = await aio_pika.connect(AMQP_URL)
        depths: dict[str, int | None] = {}
        async with conn:
            for name in names:
                ch = await conn.channel()
                try:
                    q = await ch.declare_queue(f"{ns}.{name}", passive=True)
                    depths[name] = q.declaration_result.message_count
                except aio_pika.exceptions.ChannelClosed:
                    depths[name] = None
        return depths
    return asyncio.run(read())
