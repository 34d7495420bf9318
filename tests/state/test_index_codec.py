"""The index's packed records (shared/store/index_codec.py): every field comes back as written,
values written before (JSON) still read, labels are interned once per connector whatever the
number of writers, and a realistic tree costs at most 200 bytes a file in Redis.

`realistic_records` is the tree bench/bench_index_memory.py measures too."""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
from dataclasses import asdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contracts import OwnerMethod
from shared.store.binary_records import b36
from shared.store.index_codec import (
    IndexCodec,
    Strings,
    UnknownLabel,
    encode_record,
    label_of,
    record_of,
    text_record,
)
from shared.store.state import record_of as reexported
from shared.sync.model import IndexRecord

DOMAIN = "S-1-5-21-1004336348-1177238915-682003330-"
WORDS = ("report-final", "budget-review", "minutes", "invoice-scan", "contract-signed",
         "slides-kickoff", "meeting-notes")
EXTS = ("docx", "xlsx", "pdf", "pptx", "txt")
FOLDERS = ("", "drafts/", "final/", "shared/")


def realistic_records(n: int, seed: int = 7, sharepoint: bool = False
                      ) -> dict[str, IndexRecord]:
    """`n` files of one connector: paths of 42-58 characters (53 on average); 40 principals
    mapped to 30 owners (UUIDs; by table, by fuzzy name with a score, a quarter to the system
    owner), under identity versions 1 and 2; SMB: SIDs, 64-bit decimal file ids (NTFS-like:
    sequence << 48 | record), mtimes in 100 ns, change times (a third moments after the mtime,
    the rest days to years after it: trees copied or restored with their mtimes); SharePoint:
    e-mails, drive item ids, mtimes in seconds, quickXorHash content tags. Etags: S3 md5s, 3%
    multipart."""
    rnd = random.Random(seed)
    owners = [f"{rnd.getrandbits(128):032x}"[:8] + "-5f3c-4a1b-9e2d-" + f"{i:012d}"
              for i in range(30)]
    labels: list[tuple[str, str | None, OwnerMethod, float | None]] = []
    for i in range(40):
        principal = (f"user{i:02d}@contoso.com" if sharepoint else f"{DOMAIN}{1100 + i}")
        kind = i % 4
        labels.append(("system", principal, "system_owner", None) if kind == 0 else
                      (owners[i % 30], principal, "name", round(80 + rnd.random() * 20, 6))
                      if kind == 1 else (owners[i % 30], principal, "table", None))
    out: dict[str, IndexRecord] = {}
    for i in range(n):
        path = (f"dept-{rnd.randrange(20):02d}/projects/{rnd.choice((2023, 2024, 2025))}/"
                f"q{rnd.randrange(1, 5)}/{rnd.choice(FOLDERS)}{rnd.choice(WORDS)}-{i:05d}."
                f"{rnd.choice(EXTS)}")
        owner, principal, method, score = labels[min(int(rnd.expovariate(0.15)), 39)]
        mtime_s = 1_600_000_000 + rnd.randrange(130_000_000)
        md5 = f"{rnd.getrandbits(128):032x}"
        if sharepoint:
            fid = "01" + "".join(rnd.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", k=32))
            tag = base64.b64encode(rnd.randbytes(20)).decode()  # 28 characters
            mtime = mtime_s * 10**9
            change = None
        else:
            fid = str(rnd.randrange(1, 64) << 48 | rnd.randrange(1 << 26))
            tag = None
            mtime = mtime_s * 10**9 + rnd.randrange(10**7) * 100
            change = mtime + (rnd.randrange(10**7) * 100 if rnd.random() < 1 / 3 else
                              rnd.randrange(10**14, 10**17) // 1000 * 1000)
        out[path] = IndexRecord(
            size=int(rnd.lognormvariate(11, 2)), mtime_ns=mtime, file_id=fid, owner=owner,
            principal=principal,
            etag=md5 if rnd.random() > 0.03 else f"{md5}-{rnd.randrange(2, 40)}",
            synced_at=1_730_000_000 + rnd.random() * 1e7, method=method,
            score=score, identity_version=rnd.choice((1, 1, 2)), content_tag=tag,
            change_ns=change)
    return out


OWNERS = ("system", "u-alice", "ünïcødé-owner, with commas", "x" * 200)
PRINCIPALS = (None, "S-1-5-21-1004336348-1177238915-682003330-1104", "alice@contoso.com",
              "名前@例え.jp")
FILE_IDS = (None, "0", "18446744073709551615", "0042", "01BYE5RZ6QN3ZWBTUFOFD3GSPGOHDJD36K",
            "", "a,b", "~tilde")
ETAGS = (None, "d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204e9800998ecf8427e-17",
         '"quoted"', "e", "", "D41D8CD98F00B204E9800998ECF8427E", "x,y")
TAGS = (None, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "", "with,comma")
SCORES = (None, 91.66666666666667, 0.0, 1e-300)
METHODS: tuple[OwnerMethod, ...] = ("table", "email", "name", "system_owner")


def _combinations() -> list[IndexRecord]:
    out = []
    for i, (owner, principal, fid, etag, tag) in enumerate(
            itertools.product(OWNERS, PRINCIPALS, FILE_IDS, ETAGS, TAGS)):
        out.append(IndexRecord(
            size=(0, 1, 35, 36, 5 * 2**40)[i % 5],
            mtime_ns=(-1, 0, 1_718_000_000_123_456_789)[i % 3],
            file_id=fid, owner=owner, principal=principal, etag=etag,
            synced_at=(0.0, 1.0, 1_718_000_000.1234567, -2.5)[i % 4],
            method=METHODS[i % 4], score=SCORES[i % 4], identity_version=(1, 2, 77)[i % 3],
            content_tag=tag, change_ns=(None, 0, -7, 3 * 10**17, 1_718_000_000_123_456_789)[i % 5]))
    return out


COMBINATIONS = _combinations()


def test_every_field_combination_comes_back_inline():
    for rec in COMBINATIONS:
        raw = encode_record(rec)
        assert record_of(raw) == rec, raw


def test_every_field_combination_comes_back_with_label_ids():
    strings = Strings()
    for i, rec in enumerate(COMBINATIONS):
        label_id = format(i % 1000, "x")
        strings.learn(label_id, (rec.owner, rec.principal, rec.method, rec.score,
                                 rec.identity_version))
        raw = encode_record(rec, label_id)
        assert record_of(raw, strings) == rec, raw
        assert record_of(raw, strings).synced_at.hex() == float(rec.synced_at).hex()


USUAL_SMB = IndexRecord(size=48_213, mtime_ns=1_718_000_000_123_456_700,
                        file_id="844424930132033", owner="u-alice",
                        principal="S-1-5-21-1004336348-1177238915-682003330-1104",
                        etag="d41d8cd98f00b204e9800998ecf8427e",
                        synced_at=1_718_000_000.1234567, method="table",
                        change_ns=1_718_000_000_123_456_700 + 86_400 * 10**9)
USUAL_SHAREPOINT = IndexRecord(size=1_900_000, mtime_ns=1_764_000_000 * 10**9,
                               file_id="01BYE5RZ6QN3ZWBTUFOFD3GSPGOHDJD36K", owner="u-alice",
                               principal="alice@contoso.com",
                               etag="d41d8cd98f00b204e9800998ecf8427e",
                               synced_at=1_764_000_000.1234567, method="email",
                               content_tag="aGVsbG8gd29ybGQhISEhISEhISE=")


def stored_bytes(raw: str) -> int:
    return len(raw.encode("utf-8", "surrogateescape"))


@pytest.mark.parametrize("rec, at_most, as_text", [(USUAL_SMB, 53, 77),
                                                   (USUAL_SHAREPOINT, 76, 121)])
def test_a_usual_value_is_packed_as_bytes_shorter_than_text(rec, at_most, as_text):
    """At most 76 bytes is what puts a SharePoint file's entry in Redis's 80-byte class
    (docs/PERFORMANCE.md §19, §20); an SMB file's takes a class less than as text too."""
    strings = Strings()
    strings.learn("3", label_of(rec))
    raw = encode_record(rec, "3")
    assert stored_bytes(raw) <= at_most, stored_bytes(raw)
    assert len(text_record(rec, "3")) >= as_text  # what the same record took before
    assert record_of(raw, strings) == rec


def test_a_value_written_as_text_before_still_reads():
    strings = Strings()
    strings.learn("3", label_of(USUAL_SMB))
    raw = text_record(USUAL_SMB, "3")
    assert raw.isprintable() and raw.split(",")[3] == "1B2M2Y8AsgTpgAmY7PhCfg"  # md5, base 64
    assert record_of(raw, strings) == USUAL_SMB


def test_a_value_written_before_change_times_reads_without_one():
    """Values packed before the change time was kept: no change time, so the file compares
    equal to its listing by size, mtime and file id (no mass upload after the upgrade)."""
    rec = IndexRecord(size=48_213, mtime_ns=1_718_000_000_123_456_700, file_id="844424930132033",
                      owner="u-alice", principal=None, etag="d41d8cd98f00b204e9800998ecf8427e",
                      synced_at=1_718_000_000.5, method="table")
    strings = Strings()
    strings.learn("3", ("u-alice", None, "table", None, 1))
    assert record_of(text_record(rec, "3"), strings) == rec  # no change time: as before
    assert "." not in text_record(rec, "3").split(",")[1]
    later = IndexRecord(**{**asdict(rec), "change_ns": rec.mtime_ns + 5_000})
    packed = text_record(later, "3")
    assert packed.split(",")[1].endswith(".5")  # 5 µs after the mtime, in base 36
    assert record_of(packed, strings) == later
    assert len(packed) - len(text_record(rec, "3")) == 2
    assert record_of(encode_record(rec, "3"), strings) == rec  # and as bytes
    assert stored_bytes(encode_record(later, "3")) - stored_bytes(encode_record(rec, "3")) == 1


def test_json_written_before_still_reads_with_shared_strings():
    rec = COMBINATIONS[5]
    raw = json.dumps(asdict(rec))
    assert record_of(raw) == reexported(raw) == rec
    strings = Strings()
    a, b = (record_of(json.dumps(asdict(rec)), strings) for _ in range(2))
    assert a == b == rec and a.owner is b.owner


def test_fields_a_comma_would_break_are_kept_as_json():
    rec = next(r for r in COMBINATIONS if r.file_id == "a,b")
    assert encode_record(rec)[0] == "{"
    assert record_of(encode_record(rec)) == rec


def test_a_label_id_without_its_table_is_refused():
    raw = encode_record(COMBINATIONS[0], "k")
    with pytest.raises(UnknownLabel):
        record_of(raw)
    with pytest.raises(UnknownLabel):
        record_of(raw, Strings())


async def test_writers_agree_on_label_ids(state):
    """Several processes (codecs of their own) label at once: one id per label, one label per
    id, and a reader that read the table before learns the newer ids when it meets them."""
    reader = IndexCodec(state.r, state.ns)
    await reader.strings("c1")  # read while empty
    records = list(realistic_records(400, seed=3).values())
    writers = [IndexCodec(state.r, state.ns) for _ in range(4)]
    values = await asyncio.gather(*(w.values("c1", records[i::2] + records[:50])
                                    for i, w in enumerate(writers)))
    table = await state.r.hgetall(state.index_codec.key("c1"))
    by_id = {k: v for k, v in table.items() if k[0] != "="}
    assert {v: k for k, v in by_id.items()} == {k[1:]: v for k, v in table.items()
                                                if k[0] == "="}
    assert sorted(int(i, 36) for i in by_id) == list(range(1, len(by_id) + 1))
    assert len(by_id) == len({(r.owner, r.principal, r.method, r.score, r.identity_version)
                              for r in records})
    for i, vals in enumerate(values):
        recs = records[i::2] + records[:50]
        got = await reader.records("c1", {str(n): v for n, v in enumerate(vals)})
        assert list(got.values()) == recs


async def test_the_store_writes_packed_values_and_reads_both(state):
    recs = realistic_records(50, seed=5) | {"Ünïcødé/名前/ファイル, a comma.txt": COMBINATIONS[9]}
    for path, rec in recs.items():
        await state.put_index("c1", path, rec)
    old = next(iter(recs))
    await state.r.hset(state.key("index", "c1"), old, json.dumps(asdict(recs[old])))
    assert await state.index("c1") == recs
    assert await state.index_record("c1", old) == recs[old]
    raws = await state.r.hgetall(state.key("index", "c1"))
    assert sum(v[0] == "{" for v in raws.values()) == 1


async def test_a_realistic_tree_costs_at_most_200_bytes_a_file(state):
    """RAM a user would notice: 5,000 files of an SMB share, written through the store, in the
    index's hash as Redis counts it (paths, values, entries and buckets)."""
    recs = realistic_records(5000)
    for path, rec in recs.items():
        await state.put_index("c1", path, rec)
    key = state.key("index", "c1")
    per_file = await state.r.memory_usage(key, samples=0) / await state.r.hlen(key)
    assert per_file <= 200, per_file
    assert await state.index("c1") == recs



_ids = st.none() | st.text(max_size=300) | st.integers(0, 2**130).map(str) | st.builds(
    lambda b: "01" + base64.b32encode(b).decode(), st.binary(min_size=20, max_size=20))
_etags = st.none() | st.text(max_size=300) | st.builds(
    lambda b, n: b.hex() + (f"-{n}" if n else ""), st.binary(min_size=16, max_size=16),
    st.integers(0, 10_000))
_tags = st.none() | st.text(max_size=300) | st.builds(
    lambda b: base64.b64encode(b).decode(), st.binary(min_size=0, max_size=24))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(-1, 2**130), mtime=st.integers(-2**70, 2**70),
       change=st.none() | st.integers(-2**70, 2**70), fid=_ids, etag=_etags, tag=_tags,
       synced=st.floats(allow_nan=False), label=st.integers(0, 36**6))
def test_any_record_comes_back_exactly(size, mtime, change, fid, etag, tag, synced, label):
    """Whatever a record holds, its value reads back equal (in binary where that form holds it,
    else as text or JSON), and a binary value is the bytes Redis keeps, through the store's
    client (`surrogateescape`)."""
    rec = IndexRecord(size=size, mtime_ns=mtime, file_id=fid, owner="u-1", principal=None,
                      etag=etag, synced_at=synced, content_tag=tag, change_ns=change)
    label_id = b36(label)
    strings = Strings()
    strings.learn(label_id, label_of(rec))
    raw = encode_record(rec, label_id)
    assert record_of(raw, strings) == rec
    again = raw.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
    assert record_of(again, strings) == rec
