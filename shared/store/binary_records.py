"""The binary form of an index value (`index_codec`'s third, after JSON and the text fields):
what a file's record costs in Redis once its identifiers are kept as the bytes they stand for
(a SharePoint item id is 20 bytes written as 34 characters; its quickXorHash 20 as 28; an md5
16 as 32). Owns the layout only; the label ids are `index_codec`'s.

The store's client reads replies with `encoding_errors="surrogateescape"` (shared/store/
connection.py), so these bytes travel as a `str` like every other value and come back exact.

  byte 0      marker: 0x01 (no text form starts with a control character)
  byte 1      kinds: file id (bits 0-1), etag (2-3), content tag (4-5), change time (6-7)
  byte 2      lengths: the size's (high 4 bits), the mtime's (low 4: 9-15 for whole seconds
              in 1-7 bytes, else ns in 0-8 bytes)
  [byte 3]    lengths: the change time's (high 4 bits), a numeric file id's (low 4); only
              when either is there
  size        unsigned, big-endian, in its length
  mtime       signed, big-endian: seconds or ns as byte 2 says
  change      signed, its distance from the mtime: µs (kind 1) or ns (kind 2)
  file id     kind 1: a decimal integer (SMB's), unsigned; 2: Graph's "01" + 32 base-32
              characters, their 20 bytes; 3: text
  etag        kind 1: an md5 (S3's), 16 bytes; 2: an md5 "-N" (multipart), 16 bytes and N as
              text; 3: text
  synced_at   8 bytes, the float's own (exact)
  tag         kind 1: base 64 of 20 bytes (SharePoint's quickXorHash), those bytes; 2: text
  label       the rest: its id read in base 36, unsigned
Kind 0 is None; text is a length byte (≤ 255 UTF-8 bytes) and the bytes. Integers are cut
from the bytes by their lengths (`int.from_bytes`: one C call each, no loop per byte). A record
this form cannot hold exactly (a negative size, a label id not in its canonical base 36, a text
field over 255 bytes) is `None` from `pack`: the caller writes a text form instead.

A SharePoint file then takes ~75 bytes (text: ~121), which is what lets an entry of the index
hash fit Redis's 80-byte allocation class (docs/PERFORMANCE.md §20).
"""
from __future__ import annotations

import re
import struct
from binascii import Error as Base64Error
from binascii import a2b_base64, b2a_base64

MARKER = "\x01"
_FLOAT = struct.Struct(">d")
_MD5 = re.compile(r"([0-9a-f]{32})(?:-([1-9][0-9]*))?")
GRAPH_ID = re.compile(r"01[A-Z2-7]{32}")  # a SharePoint item id: "01", base 32 of 20 bytes
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_LABEL_ID = re.compile(r"[0-9a-z]+")
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648's, Graph's ids
_B32_PAIRS = [a + b for a in _B32 for b in _B32]
_TO_INT_DIGITS = str.maketrans(_B32, "0123456789abcdefghijklmnopqrstuv")  # int(..., 32)'s

Fields = tuple[int, int, int | None, str | None, str | None, float, str | None, str]
"""size, mtime_ns, change_ns, file_id, etag, synced_at, content_tag, label id"""


def pack(size: int, mtime_ns: int, change_ns: int | None, file_id: str | None,
         etag: str | None, synced_at: float, tag: str | None, label_id: str) -> str | None:
    """The binary value, as the client's text; None where this form cannot hold it exactly."""
    if size < 0 or not _LABEL_ID.fullmatch(label_id) or b36(int(label_id, 36)) != label_id:
        return None
    try:
        fid_kind, fid = _file_id(file_id)
        etag_kind, etag_b = _etag(etag)
        tag_kind, tag_b = _tag(tag)
    except ValueError:  # a text field too long for its length byte
        return None
    secs, ns = divmod(mtime_ns, 10**9)
    mtime = _signed(secs) if not ns else _signed(mtime_ns)
    change_kind, change = _change(mtime_ns, change_ns)
    size_b = _unsigned(size)
    if len(size_b) > 15 or len(mtime) > (8 if ns else 7) or len(change) > 15:
        return None  # beyond what the lengths' 4 bits say
    out = bytearray((1, fid_kind | etag_kind << 2 | tag_kind << 4 | change_kind << 6,
                     len(size_b) << 4 | (len(mtime) + 8 if not ns else len(mtime))))
    if change_kind or fid_kind == 1:
        out.append(len(change) << 4 | (len(fid) if fid_kind == 1 else 0))
    out += size_b + mtime + change + fid + etag_b + _FLOAT.pack(synced_at) + tag_b
    out += _unsigned(int(label_id, 36))
    return out.decode("utf-8", "surrogateescape")


def unpack(raw: str) -> Fields:
    """The fields of a value `pack` gave (it begins with MARKER)."""
    b = raw.encode("utf-8", "surrogateescape")
    kinds, lengths = b[1], b[2]
    change_kind, fid_kind = kinds >> 6, kinds & 3
    more, at = (b[3], 4) if change_kind or fid_kind == 1 else (0, 3)
    end = at + (lengths >> 4)
    size = int.from_bytes(b[at:end])
    m = lengths & 15
    at, end = end, end + (m - 8 if m > 8 else m)
    mtime = int.from_bytes(b[at:end], signed=True) * (10**9 if m > 8 else 1)
    change = None
    if change_kind:
        at, end = end, end + (more >> 4)
        change = mtime + int.from_bytes(b[at:end], signed=True) * (
            1000 if change_kind == 1 else 1)
    file_id, at = _read_file_id(b, end, fid_kind, more & 15)
    etag, at = _read_etag(b, at, kinds >> 2 & 3)
    synced = _FLOAT.unpack_from(b, at)[0]
    tag, at = _read_tag(b, at + 8, kinds >> 4 & 3)
    return size, mtime, change, file_id, etag, synced, tag, b36(int.from_bytes(b[at:]))


# --- writing -------------------------------------------------------------------------------

def _change(mtime_ns: int, change_ns: int | None) -> tuple[int, bytes]:
    if change_ns is None:
        return 0, b""
    us, ns = divmod(change_ns - mtime_ns, 1000)
    return (1, _signed(us)) if not ns else (2, _signed(change_ns - mtime_ns))


def _file_id(fid: str | None) -> tuple[int, bytes]:
    if fid is None:
        return 0, b""
    if fid.isascii() and fid.isdigit() and str(int(fid)) == fid and int(fid) < 1 << 120:
        return 1, _unsigned(int(fid))
    if GRAPH_ID.fullmatch(fid):
        return 2, graph_id_bytes(fid)
    return 3, _text(fid)


def _etag(etag: str | None) -> tuple[int, bytes]:
    if etag is None:
        return 0, b""
    if m := _MD5.fullmatch(etag):
        md5 = bytes.fromhex(m[1])
        return (1, md5) if m[2] is None else (2, md5 + _text(m[2]))
    return 3, _text(etag)


def _tag(tag: str | None) -> tuple[int, bytes]:
    if tag is None:
        return 0, b""
    raw = _base64_20(tag)
    return (1, raw) if raw is not None else (2, _text(tag))


def _base64_20(tag: str) -> bytes | None:
    """The 20 bytes `tag` is the canonical base 64 of (a quickXorHash), else None."""
    if len(tag) != 28 or not tag.isascii():
        return None
    try:
        raw = a2b_base64(tag, strict_mode=True)
    except Base64Error:
        return None
    return raw if len(raw) == 20 and b2a_base64(raw, newline=False).decode() == tag else None


def _text(s: str) -> bytes:
    b = s.encode("utf-8", "surrogatepass")
    if len(b) > 255:
        raise ValueError("text field over 255 bytes")
    return bytes((len(b),)) + b


def _unsigned(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8)


def _signed(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 8) // 8 if n >= 0 else ((~n).bit_length() + 8) // 8,
                      signed=True)


def b36(n: int) -> str:
    """`n` in base 36 ("-" before a negative one): `int(text, 36)` reads it back (the label
    ids', and the text form's numbers)."""
    if n < 0:
        return "-" + b36(-n)
    digits = ""
    while True:
        n, d = divmod(n, 36)
        digits = _B36[d] + digits
        if not n:
            return digits


# --- reading -------------------------------------------------------------------------------

def _read_text(b: bytes, at: int) -> tuple[str, int]:
    n = b[at]
    return b[at + 1:at + 1 + n].decode("utf-8", "surrogatepass"), at + 1 + n


def _read_file_id(b: bytes, at: int, kind: int, length: int) -> tuple[str | None, int]:
    if kind == 0:
        return None, at
    if kind == 1:
        return str(int.from_bytes(b[at:at + length])), at + length
    if kind == 2:
        return graph_id(b[at:at + 20]), at + 20
    return _read_text(b, at)


def graph_id_bytes(item_id: str) -> bytes:
    """The 20 bytes of a SharePoint item id (`GRAPH_ID`); `graph_id` gives it back."""
    return int(item_id[2:].translate(_TO_INT_DIGITS), 32).to_bytes(20)


def graph_id(raw: bytes, pairs: list[str] = _B32_PAIRS) -> str:
    """The SharePoint item id of 20 bytes: "01" and their base 32 (RFC 4648's alphabet), ten
    bits at a time (base64.b32encode takes twice as long: a file's id is read at every scan)."""
    n = int.from_bytes(raw)
    return "".join(("01", pairs[n >> 150], pairs[n >> 140 & 1023], pairs[n >> 130 & 1023],
                    pairs[n >> 120 & 1023], pairs[n >> 110 & 1023], pairs[n >> 100 & 1023],
                    pairs[n >> 90 & 1023], pairs[n >> 80 & 1023], pairs[n >> 70 & 1023],
                    pairs[n >> 60 & 1023], pairs[n >> 50 & 1023], pairs[n >> 40 & 1023],
                    pairs[n >> 30 & 1023], pairs[n >> 20 & 1023], pairs[n >> 10 & 1023],
                    pairs[n & 1023]))


def _read_etag(b: bytes, at: int, kind: int) -> tuple[str | None, int]:
    if kind == 0:
        return None, at
    if kind == 3:
        return _read_text(b, at)
    md5 = b[at:at + 16].hex()
    if kind == 1:
        return md5, at + 16
    parts, at = _read_text(b, at + 16)
    return f"{md5}-{parts}", at


def _read_tag(b: bytes, at: int, kind: int) -> tuple[str | None, int]:
    if kind == 0:
        return None, at
    if kind == 1:
        return b2a_base64(b[at:at + 20], newline=False).decode(), at + 20
    return _read_text(b, at)
