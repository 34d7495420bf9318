"""The index's RAM and decoding speed: JSON records (as before) against packed ones
(shared/store/index_codec.py), on one realistic tree.

    python bench/bench_index_memory.py [--files 20000]

For an SMB tree and a SharePoint tree of `--files` files (tests/state/test_index_codec.py's
`realistic_records`: 45-60 character paths, 40 principals, S3 md5 etags), writes the index
hash both ways into the machine's Redis (TEST_REDIS_URL, else 127.0.0.1:6379; a namespace of
its own, removed afterwards) and prints, per file: `MEMORY USAGE key SAMPLES 0` / HLEN (the
path, the value, Redis's entry and its share of the buckets), the value's length, what each
field costs in either form, and µs to decode a record (json.loads + IndexRecord(**fields)
against record_of; best of 5 over the whole tree). The packed form's label table
({ns}:labels:{cid}) is shown apart: it holds one entry per label, not per file.
Goal: at most 200 bytes a file, decoding no slower than JSON.

A SharePoint connector also keeps its delta position's items ({ns}:items:{cid}: one per file
and folder, shared/store/delta_positions.py), whatever the index holds: for the SharePoint tree
they are written too, as JSON (before) and packed, and shown per file, beside the index.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import timeit
from dataclasses import asdict, fields

from common import table

from shared.store.delta_positions import pack_item
from shared.store.index_codec import IndexCodec, encode_record, record_of
from shared.sync.model import IndexRecord
from tests.state.test_index_codec import realistic_records

CHUNK = 1000


async def memory_per_file(r, key: str, values: dict[str, str]) -> float:
    items = list(values.items())
    for i in range(0, len(items), CHUNK):
        await r.hset(key, mapping=dict(items[i:i + CHUNK]))
    return await r.memory_usage(key, samples=0) / await r.hlen(key)


def decode_us(raws: list[str], decode) -> float:
    best = min(timeit.repeat(lambda: [decode(v) for v in raws], number=1, repeat=5))
    return best / len(raws) * 1e6


def field_costs(recs: list[IndexRecord], packed: list[str]) -> list[list]:
    """Average characters of each field: in the JSON (`"name": value, `) and packed."""
    names = [f.name for f in fields(IndexRecord)]
    as_json = {n: sum(len(json.dumps({n: getattr(rec, n)})) - 1 for rec in recs) / len(recs)
               for n in names}
    cols = ["size", "mtime_ns", "file_id", "etag", "synced_at", "content_tag", "label"]
    split = [v.split(",", 6) for v in packed if v[0] != "{"]
    ours = {c: sum(len(p[i]) for p in split) / len(split) for i, c in enumerate(cols)}
    label = ("owner", "principal", "method", "score", "identity_version")
    rows = [[n, round(as_json[n], 1), round(ours[n], 1) if n in ours else "(label)"]
            for n in names]
    return rows + [["label " + "+".join(label), round(sum(as_json[n] for n in label), 1),
                    round(ours["label"], 1)]]


async def case(r, ns: str, label: str, recs: dict[str, IndexRecord]) -> list:
    codec = IndexCodec(r, ns)
    cid = label.lower()
    as_json = {p: json.dumps(asdict(rec)) for p, rec in recs.items()}
    packed = dict(zip(recs, await codec.values(cid, list(recs.values())), strict=True))
    json_b = await memory_per_file(r, f"{ns}:index:{cid}-json", as_json)
    packed_b = await memory_per_file(r, f"{ns}:index:{cid}", packed)
    labels_b = await r.memory_usage(codec.key(cid), samples=0)
    strings = await codec.strings(cid)
    assert all(record_of(v, strings) == recs[p] for p, v in packed.items())
    json_us = decode_us(list(as_json.values()), lambda v: IndexRecord(**json.loads(v)))
    packed_us = decode_us(list(packed.values()), lambda v: record_of(v, strings))
    print(f"{label}: fields, average characters (JSON / packed)")
    print(table(["field", "JSON", "packed"], field_costs(list(recs.values()),
                                                           list(packed.values()))), flush=True)
    inline = sum(len(encode_record(rec)) for rec in recs.values()) / len(recs)
    return [label, len(recs), round(sum(map(len, recs)) / len(recs), 1),
            round(sum(map(len, as_json.values())) / len(recs), 1),
            round(sum(map(len, packed.values())) / len(recs), 1), round(inline, 1),
            round(json_b, 1), round(packed_b, 1), f"{labels_b:,} B / {len(strings.labels)}",
            round(json_us, 2), round(packed_us, 2)]


def delta_items(recs: dict[str, IndexRecord]) -> dict[str, dict]:
    """The delta items of the SharePoint tree: its folders and files as Graph's delta gives them
    (compact form; ids like Graph's, 34 characters; mtimes in whole seconds)."""
    def new_id(n: int) -> str:
        return "01" + f"{n:032d}".translate(str.maketrans("0123456789", "ABCDEFGH23"))

    folders: dict[str, str] = {"": new_id(0)}
    items: dict[str, dict] = {folders[""]: {"r": 1}}
    for path, rec in recs.items():
        parent = ""
        for name in path.split("/")[:-1]:
            here = f"{parent}/{name}".lstrip("/")
            if here not in folders:
                folders[here] = new_id(len(folders))
                items[folders[here]] = {"n": name, "p": folders[parent], "f": 1}
            parent = here
        items[rec.file_id or path] = {
            "n": path.rsplit("/", 1)[-1], "p": folders[parent], "s": rec.size, "m": rec.mtime_ns,
            "t": rec.content_tag, "o": rec.principal}
    return items


async def items_case(r, ns: str, recs: dict[str, IndexRecord]) -> list:
    items = delta_items(recs)
    json_b = await memory_per_file(r, f"{ns}:items:json", {k: json.dumps(v)
                                                           for k, v in items.items()})
    packed = {k: pack_item(v) for k, v in items.items()}
    packed_b = await memory_per_file(r, f"{ns}:items:packed", packed)
    per_file = len(items) / len(recs)  # the folders' entries, shared among the files
    return [len(recs), len(items) - len(recs),
            round(sum(len(json.dumps(v)) for v in items.values()) / len(items), 1),
            round(sum(map(len, packed.values())) / len(items), 1),
            round(json_b * per_file, 1), round(packed_b * per_file, 1)]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    args = ap.parse_args()
    import redis.asyncio as aioredis
    r = aioredis.from_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
                          decode_responses=True)
    ns = "bench-index-" + secrets.token_hex(4)
    try:
        sharepoint = realistic_records(args.files, sharepoint=True)
        rows = [await case(r, ns, "SMB", realistic_records(args.files)),
                await case(r, ns, "SharePoint", sharepoint)]
        items = await items_case(r, ns, sharepoint)
    finally:
        keys = [k async for k in r.scan_iter(f"{ns}:*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()
    print(table(["tree", "files", "path chars", "JSON chars", "packed chars",
                 "packed, label inline", "JSON B/file", "packed B/file", "label table",
                 "JSON decode µs", "packed decode µs"], rows))
    print("SharePoint delta items ({ns}:items:{cid}), beside the index:")
    print(table(["files", "folders", "JSON chars", "packed chars", "JSON B/file",
                 "packed B/file"], [items]))


if __name__ == "__main__":
    asyncio.run(main())
