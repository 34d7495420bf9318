"""The index's RAM and coding speed: JSON records (the first form), the text fields (the
second) and the binary form written now (shared/store/index_codec.py, binary_records.py), on
one realistic tree.

    python bench/bench_index_memory.py [--files 20000]

For an SMB tree and a SharePoint tree of `--files` files (tests/state/test_index_codec.py's
`realistic_records`: 45-60 character paths, 40 principals, S3 md5 etags), writes the index
hash each way into the machine's Redis (TEST_REDIS_URL, else 127.0.0.1:6379; a namespace of
its own, removed afterwards) and prints, per file: `MEMORY USAGE key SAMPLES 0` / HLEN (the
path, the value, Redis's entry and its share of the buckets), the value's length, what each
field costs as JSON and as text, and µs to decode a record (json.loads + IndexRecord(**fields)
against record_of; best of 5 over the whole tree) and to encode one. The label table
({ns}:labels:{cid}) is shown apart: it holds one entry per label, not per file.
Goal: at most 200 bytes a file, decoding no slower than JSON.

A SharePoint connector also keeps its delta position's items ({ns}:items:{cid}): the folders
and only the files the index does not vouch for (shared/store/delta_positions.py). For the
SharePoint tree, every item (as before) as JSON and packed, and the folders alone, per file.
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

from shared.store.connection import connect
from shared.store.delta_positions import pack_item
from shared.store.index_codec import IndexCodec, encode_record, label_of, record_of, text_record
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
    strings = await codec.strings(cid)
    as_text = {p: text_record(rec, strings.ids[label_of(rec)]) for p, rec in recs.items()}
    json_b = await memory_per_file(r, f"{ns}:index:{cid}-json", as_json)
    text_b = await memory_per_file(r, f"{ns}:index:{cid}-text", as_text)
    packed_b = await memory_per_file(r, f"{ns}:index:{cid}", packed)
    labels_b = await r.memory_usage(codec.key(cid), samples=0)
    assert all(record_of(v, strings) == recs[p] for p, v in packed.items())
    json_us = decode_us(list(as_json.values()), lambda v: IndexRecord(**json.loads(v)))
    text_us = decode_us(list(as_text.values()), lambda v: record_of(v, strings))
    packed_us = decode_us(list(packed.values()), lambda v: record_of(v, strings))
    encode_text_us = encode_us(recs, lambda rec: text_record(rec, "3"))
    encode_packed_us = encode_us(recs, lambda rec: encode_record(rec, "3"))
    print(f"{label}: fields, average characters (JSON / text)")
    print(table(["field", "JSON", "text"], field_costs(list(recs.values()),
                                                         list(as_text.values()))), flush=True)
    n = len(recs)
    return [label, n, round(sum(map(len, recs)) / n, 1),
            round(sum(map(len, as_json.values())) / n, 1),
            round(sum(map(len, as_text.values())) / n, 1),
            round(sum(len(v.encode("utf-8", "surrogateescape")) for v in packed.values()) / n, 1),
            round(json_b, 1), round(text_b, 1), round(packed_b, 1),
            f"{labels_b:,} B / {len(strings.labels)}",
            round(json_us, 2), round(text_us, 2), round(packed_us, 2),
            round(encode_text_us, 2), round(encode_packed_us, 2)]


def encode_us(recs: dict[str, IndexRecord], encode) -> float:
    values = list(recs.values())
    best = min(timeit.repeat(lambda: [encode(v) for v in values], number=1, repeat=5))
    return best / len(values) * 1e6


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
    folders = {k: v for k, v in packed.items() if k not in {rec.file_id for rec in recs.values()}}
    folders_b = await memory_per_file(r, f"{ns}:items:folders", folders)
    return [len(recs), len(items) - len(recs),
            round(sum(len(json.dumps(v)) for v in items.values()) / len(items), 1),
            round(sum(map(len, packed.values())) / len(items), 1),
            round(json_b * per_file, 1), round(packed_b * per_file, 1),
            round(folders_b * len(folders) / len(recs), 1)]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    args = ap.parse_args()
    r = connect(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))  # the store's
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
    print(table(["tree", "files", "path chars", "JSON chars", "text chars", "binary bytes",
                 "JSON B/file", "text B/file", "binary B/file", "label table",
                 "JSON decode µs", "text decode µs", "binary decode µs", "text encode µs",
                 "binary encode µs"], rows))
    print("SharePoint delta items ({ns}:items:{cid}), beside the index (B/file: the items'"
          " bytes over the files):")
    print(table(["files", "folders", "JSON chars", "packed chars", "JSON B/file",
                 "packed B/file", "folders only B/file"], [items]))


if __name__ == "__main__":
    asyncio.run(main())
