"""The request bodies of the compounds sent without smbclient's file objects (owners.py,
small_reads.py), packed with `struct` (MS-SMB2 2.2.13 CREATE, 2.2.37 QUERY_INFO, 2.2.19 READ,
2.2.15 CLOSE) into the same bytes smbprotocol's `Open.create/read/close` and
`SMB2QueryInfoRequest` pack (tests/unit/test_smb_packed_requests.py compares them).

smbprotocol builds each request as a Structure of per-field objects: 0.1-0.2 ms to build and
pack one on this machine, three to four of them per file for an owner lookup and again for a
small read. `Connection.send_compound` asks of a message only its `COMMAND`, `len()`,
`pack()` and, for a READ's credit charge, its `length` and `read_channel_info_length`: a
`PackedRequest` answers those. It cannot be rebuilt into a Structure, which smbprotocol only
does to follow a symbolic link (STATUS_STOPPED_ON_SYMLINK), so replies to these compounds are
received with `resolve_symlinks=False` and a link is left to smbclient's own open
(`SYMLINK_STOP`).

Imports smbprotocol's command numbers and enums, and `framing`'s field value.
"""
from __future__ import annotations

import struct

from smbprotocol.header import Commands
from smbprotocol.open import CreateDisposition, ImpersonationLevel

from shared.sources.smb.framing import Known

SYMLINK_STOP = 0x8000002D  # STATUS_STOPPED_ON_SYMLINK: the path holds a link; not followed here
RELATED_FILE_ID = b"\xff" * 16  # a related compound's later requests name the CREATE's handle
_CREATE = struct.Struct("<HBBIQQIIIIIHHII")  # 56 bytes, the name after
_QUERY_INFO = struct.Struct("<HBBIHHIII16s")  # 40 bytes, no buffer (as smbprotocol sends it)
_READ = struct.Struct("<HBBIQ16sIIIHH")  # 48 bytes, then one byte of empty buffer
_CLOSE = struct.Struct("<HHI16s")
_HEADER = 64


class PackedRequest:
    """A request body already packed, for `Connection.send_compound`."""

    __slots__ = ("COMMAND", "data", "length")

    def __init__(self, command: int, data: bytes, length: int = 0):
        self.COMMAND, self.data, self.length = command, data, length

    def __len__(self) -> int:
        return len(self.data)

    def pack(self) -> bytes:
        return self.data

    def __getitem__(self, field: str) -> Known:
        """The fields smbprotocol's credit charge reads of a READ (its reply's payload)."""
        if field == "length":
            return Known(self.length)
        if field == "read_channel_info_length":
            return Known(0)
        raise KeyError(field)


def create(name: str, access: int, share: int, options: int = 0,
           attributes: int = 0x80) -> PackedRequest:
    """Open the existing file `name` (share-relative, '\\'-separated; never ""), no oplock,
    no create contexts."""
    path = name.encode("utf-16-le")
    return PackedRequest(Commands.SMB2_CREATE, _CREATE.pack(
        57, 0, 0, ImpersonationLevel.Impersonation, 0, 0, access, attributes, share,
        CreateDisposition.FILE_OPEN, options,
        _HEADER + 56, len(path), 0, 0) + path)


def query_info(info_type: int, info_class: int, output_length: int,
               additional: int = 0) -> PackedRequest:
    """Of the compound's open (a related compound's handle)."""
    return PackedRequest(Commands.SMB2_QUERY_INFO, _QUERY_INFO.pack(
        41, info_type, info_class, output_length, 0, 0, 0, additional, 0, RELATED_FILE_ID))


def read(length: int, offset: int = 0) -> PackedRequest:
    """`length` bytes from `offset` of the compound's open."""
    return PackedRequest(Commands.SMB2_READ, _READ.pack(
        49, 0x50, 0, length, offset, RELATED_FILE_ID, 0, 0, 0, 0, 0) + b"\x00", length)


def close() -> PackedRequest:
    return PackedRequest(Commands.SMB2_CLOSE, _CLOSE.pack(24, 0, 0, RELATED_FILE_ID))
