"""How an index record is kept in Redis: the packed value of `{ns}:index:{cid}` (one per indexed
file, so its size is the index's RAM), and the connector's table of owner labels those values
point to. `encode_record` / `record_of` are the value's two directions; `IndexCodec` is what the
store holds to write and read them with the label table (interning labels, caching the table).

Key layout ({ns} = SCAIDRIVE_NAMESPACE):

  {ns}:labels:{cid}   hash, append-only (kept when the connector is deleted: a process may
                      still hold its ids): id -> label, "=" + label -> id. A label is the JSON
                      [owner, principal, method, score, identity_version]; ids are base 36,
                      1, 2, ... in the order labels were first written (LABEL_IDS, atomic).

A value is written in binary (shared/store/binary_records.py: its first byte is 0x01) where
that form holds the record exactly, which is every record with a label id but the odd few it
lists. Values written before it, and those few, are text: seven fields joined by "," (the JSON of
the record instead when a field would hold a "," or is an empty content tag; values written
before that are JSON too). All three read:

  size, mtime_ns   integers in base 36 ("-" before a negative one); the mtime may be
                   followed by the change time (SMB's) as its distance from the mtime in base
                   36: "." + whole microseconds (SMB's times are), else ":" + nanoseconds;
                   neither = None (every value written before change times were kept)
  file_id          "" = None; a decimal integer (SMB's file ids) in base 36; else "~" + as is
  etag             "" = None; an md5 (32 hex, S3's) in base 64 (22 characters), with a
                   multipart "-N" kept after it; else "~" + as is
  synced_at        the float's 64 bits, in base 36 (exact)
  content_tag      "" = None; else as is (SharePoint's base64 quickXorHash)
  label            its id in {ns}:labels:{cid}; or, from `encode_record` without an id, the
                   label's JSON itself (the last field: it may hold ",")

A file of a realistic SMB tree (paths of ~53 characters) costs ~52 bytes of value in binary
(text: ~78 characters; JSON: ~370), about 171 bytes in the hash (`MEMORY USAGE`: its path,
Redis's own entry and buckets; text 198, JSON 530); a SharePoint file, with its item id,
content tag and md5, ~75 bytes and ~187 bytes (text ~121 characters and 235 bytes). Measured
by bench/bench_index_memory.py.
"""
from __future__ import annotations

import json
import logging
import re
import struct
from binascii import a2b_base64, b2a_base64
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import cast

from redis.asyncio import Redis

from shared.contracts import OwnerMethod
from shared.store import binary_records
from shared.store.binary_records import b36
from shared.store.connection import tagger
from shared.store.replies import text_hash
from shared.sync.model import IndexRecord

log = logging.getLogger(__name__)

# Who owns a file and under which mapping: repeats across a connector's files.
Label = tuple[str, str | None, OwnerMethod, float | None, int]

_FLOAT = struct.Struct(">d")
_MD5 = re.compile(r"[0-9a-f]{32}(?:-[0-9]+)?")
_REPEATED = ("owner", "principal", "method")

# Each label's id, giving a label not seen yet the next one: one script, so two writers never
# give one label two ids or one id two labels. KEYS: the label table; ARGV: labels (JSON).
LABEL_IDS = """
local digits, out = '0123456789abcdefghijklmnopqrstuvwxyz', {}
for i, label in ipairs(ARGV) do
  local id = redis.call('HGET', KEYS[1], '=' .. label)
  if not id then
    local n = redis.call('HLEN', KEYS[1]) / 2 + 1
    id = ''
    repeat
      local d = n % 36
      id = string.sub(digits, d + 1, d + 1) .. id
      n = (n - d) / 36
    until n == 0
    redis.call('HSET', KEYS[1], id, label, '=' .. label, id)
  end
  out[i] = id
end
return out
"""


class UnknownLabel(LookupError):
    """A value names a label id the reader's table does not hold (yet: read the table again)."""


class Strings:
    """What a reader of one connector's index holds beside it: the labels by id (and ids by
    label, for writing), and one object per repeated string of the JSON records of before."""

    __slots__ = ("ids", "inline", "labels", "texts")

    def __init__(self) -> None:
        self.labels: dict[str, Label] = {}
        self.ids: dict[Label, str] = {}
        self.inline: dict[str, Label] = {}  # labels written in the value, by their JSON
        self.texts: dict[str, str] = {}

    def learn(self, label_id: str, label: Label) -> None:
        self.labels[label_id] = label
        self.ids[label] = label_id

    def read(self, table: Mapping[str, str]) -> Strings:
        """Learn the labels of {ns}:labels:{cid} as HGETALL gives it."""
        for field, raw in table.items():
            if field[0] != "=" and field not in self.labels:
                self.learn(field, _parse_label(raw))
        return self


_NO_STRINGS = Strings()


# --- the value -------------------------------------------------------------------------------

def label_of(rec: IndexRecord) -> Label:
    return rec.owner, rec.principal, rec.method, rec.score, rec.identity_version


def label_json(label: Label) -> str:
    """The label as the table and an inline value hold it (one text per label)."""
    return json.dumps(label, separators=(",", ":"))


def _parse_label(raw: str) -> Label:
    return cast(Label, tuple(json.loads(raw)))


def _file_id(fid: str | None) -> str:
    if fid is None:
        return ""
    if fid.isascii() and fid.isdigit() and (fid == "0" or fid[0] != "0"):
        return b36(int(fid))
    return "~" + fid


def _etag(etag: str | None) -> str:
    if etag is None:
        return ""
    if _MD5.fullmatch(etag):
        return b2a_base64(bytes.fromhex(etag[:32]), newline=False).decode()[:22] + etag[32:]
    return "~" + etag


def encode_record(rec: IndexRecord, label_id: str | None = None) -> str:
    """The index value of `rec`. `label_id`: its label's id in the connector's table
    (`IndexCodec.values` gives it): binary (`binary_records`) where that form holds the record;
    without one, the label is written out in the value."""
    if label_id is not None:
        packed = binary_records.pack(rec.size, rec.mtime_ns, rec.change_ns, rec.file_id,
                                     rec.etag, rec.synced_at, rec.content_tag, label_id)
        if packed is not None:
            return packed
    return text_record(rec, label_id)


def text_record(rec: IndexRecord, label_id: str | None = None) -> str:
    """The text form of `rec` (the fields joined by ","; JSON where a field would break it):
    what was written before the binary form, and still is where that form cannot hold it."""
    fields = (b36(rec.size), _times(rec.mtime_ns, rec.change_ns), _file_id(rec.file_id),
              _etag(rec.etag),
              b36(int.from_bytes(_FLOAT.pack(rec.synced_at), "big")), rec.content_tag or "")
    if rec.content_tag == "" or any("," in f for f in fields):
        return json.dumps(asdict(rec))
    return ",".join((*fields, label_id or label_json(label_of(rec))))


def record_of(raw: str, strings: Strings | None = None) -> IndexRecord:
    """Decode an index value, packed or JSON. `strings`: the connector's labels, which a packed
    value naming a label id needs (else `UnknownLabel`); repeated strings come out as one
    object each. Raises UnknownLabel when the id is not in `strings`."""
    if raw[0] == binary_records.MARKER:
        return _binary_record(raw, strings)
    if raw[0] == "{":
        return _json_record(raw, strings)
    size, times, fid, etag, synced, tag, label = raw.split(",", 6)
    mtime, change = _split_times(times)
    if label[0] == "[":
        owner, principal, method, score, version = _inline(label, strings)
    else:
        try:
            owner, principal, method, score, version = (strings or _NO_STRINGS).labels[label]
        except KeyError:
            raise UnknownLabel(label) from None
    return IndexRecord(
        int(size, 36), mtime,
        (str(int(fid, 36)) if fid[0] != "~" else fid[1:]) if fid else None,
        owner, principal,
        (a2b_base64(etag[:22] + "==").hex() + etag[22:] if etag[0] != "~" else etag[1:])
        if etag else None,
        _FLOAT.unpack(int(synced, 36).to_bytes(8, "big"))[0],
        method, score, version, tag or None, change)


def _binary_record(raw: str, strings: Strings | None) -> IndexRecord:
    size, mtime, change, fid, etag, synced, tag, label = binary_records.unpack(raw)
    try:
        owner, principal, method, score, version = (strings or _NO_STRINGS).labels[label]
    except KeyError:
        raise UnknownLabel(label) from None
    return IndexRecord(size, mtime, fid, owner, principal, etag, synced, method, score, version,
                       tag, change)


def _times(mtime_ns: int, change_ns: int | None) -> str:
    if change_ns is None:
        return b36(mtime_ns)
    us, ns = divmod(change_ns - mtime_ns, 1000)
    return f"{b36(mtime_ns)}.{b36(us)}" if not ns else \
        f"{b36(mtime_ns)}:{b36(change_ns - mtime_ns)}"


def _split_times(field: str) -> tuple[int, int | None]:
    """(mtime_ns, change_ns) of the packed field."""
    for sep, unit in ((".", 1000), (":", 1)):
        mtime, found, change = field.partition(sep)
        if found:
            m = int(mtime, 36)
            return m, m + int(change, 36) * unit
    return int(field, 36), None


def _inline(raw: str, strings: Strings | None) -> Label:
    if strings is None:
        return _parse_label(raw)
    label = strings.inline.get(raw)
    if label is None:
        label = strings.inline[raw] = _parse_label(raw)
    return label


def _json_record(raw: str, strings: Strings | None) -> IndexRecord:
    fields = json.loads(raw)
    if strings is not None:
        for name in _REPEATED:
            if isinstance(v := fields.get(name), str):
                fields[name] = strings.texts.setdefault(v, v)
    return IndexRecord(**fields)


# --- with the label table --------------------------------------------------------------------

class IndexCodec:
    """A namespace's index values with their connectors' label tables: labels are given ids
    when first written (LABEL_IDS) and each table is read once, then again only when a value
    names an id written since. Safe to cache forever: a table is append-only."""

    def __init__(self, r: Redis, ns: str) -> None:
        self.r = r
        self.ns = ns
        self._tag = tagger(r)  # {cid} in cluster mode: the connector's slot
        self._tables: dict[str, Strings] = {}
        self._label_ids = r.register_script(LABEL_IDS)

    def key(self, cid: str) -> str:
        return f"{self.ns}:labels:{self._tag(cid)}"

    async def strings(self, cid: str, reread: bool = False) -> Strings:
        """The connector's label table as this process knows it; `reread`: read it again."""
        table = self._tables.get(cid)
        if table is None or reread:
            table = self._tables.setdefault(cid, Strings())
            table.read(text_hash(await self.r.hgetall(self.key(cid))))
        return table

    async def values(self, cid: str, recs: Sequence[IndexRecord]) -> list[str]:
        """The index values of `recs`, their labels interned (one script call if any is new to
        this process, none otherwise)."""
        table = self._tables.get(cid) or await self.strings(cid)
        labels = [label_of(rec) for rec in recs]
        new = list(dict.fromkeys(label for label in labels if label not in table.ids))
        if new:
            ids = await self._label_ids(keys=[self.key(cid)],
                                        args=[label_json(label) for label in new])
            for label, label_id in zip(new, ids, strict=True):
                table.learn(str(label_id), label)
        return [encode_record(rec, table.ids[label]) for rec, label in zip(recs, labels,
                                                                            strict=True)]

    async def records(self, cid: str, raws: Mapping[str, str]) -> dict[str, IndexRecord]:
        """Decode a page of the index (path -> value)."""
        table = self._tables.get(cid) or await self.strings(cid)
        out: dict[str, IndexRecord] = {}
        for path, raw in raws.items():
            try:
                out[path] = record_of(raw, table)
            except UnknownLabel:  # labelled by another process since the table was read
                try:
                    out[path] = record_of(raw, await self.strings(cid, reread=True))
                except UnknownLabel:
                    # A label table lost with a Redis that lost its data under running
                    # services: the record is as good as absent, so its file is sent again
                    # (and indexed with a label that exists). Never a scan that cannot run.
                    log.warning("index entry with an unknown owner label: treated as absent",
                                extra={"connector_id": cid})
                    self._tables.pop(cid, None)
        return out

    async def record(self, cid: str, raw: str | None) -> IndexRecord | None:
        return (await self.records(cid, {"": raw}))[""] if raw else None

