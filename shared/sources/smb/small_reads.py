"""A small file whole, in one compound: CREATE + QUERY_INFO (its file id) + READ + CLOSE, one
round trip. Sent with smbprotocol's `send_compound` (signed or sealed as the session is) and its
replies read with `struct` (MS-SMB2 2.2.14, 2.2.38, 2.2.20): smbclient's file transaction
parsed every reply into smbprotocol's per-field Structures and kept the handle's state for a
handle the same compound closes: a fifth of the read's instructions (callgrind,
docs/PERFORMANCE.md §12). The owner lookups' replies are read the same way (owners.py), and
both pack their requests with `struct` (packed_requests.py).

The open asks what smbclient's "r" mode asks (read data, attributes and extended attributes,
never a folder) and shares read, write and delete: the file server's users are never locked
out. Errors are smbprotocol's (`SMBResponseException` with the NTSTATUS); the caller maps them.
"""
from __future__ import annotations

import struct

from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import FileInformationClass, InfoType
from smbprotocol.open import CreateOptions, FilePipePrinterAccessMask

from shared.sources.smb import packed_requests as packed
from shared.sources.smb.ntstatus import END_OF_FILE, connection_lost, filetime_ns
from shared.sources.smb.plumbing import PATH_NOT_COVERED, REPLY_TIMEOUT_S, SHARE_ALL, resolved
from shared.sync.model import SourceEntry

_READ = FilePipePrinterAccessMask.FILE_READ_DATA | \
    FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES | FilePipePrinterAccessMask.FILE_READ_EA
_CREATED = struct.Struct("<24xQQ8xQ")  # 2.2.14: LastWriteTime, ChangeTime, (Allocation), EndofFile
_INFO = struct.Struct("<2xHI")  # 2.2.38: OutputBufferOffset, OutputBufferLength
_FILE_ID = struct.Struct("<Q")  # FileInternalInformation: IndexNumber
_READ_REPLY = struct.Struct("<2xB1xI")  # 2.2.20: DataOffset, (Reserved), DataLength
_HEADER = 64  # reply offsets count from the SMB2 header


class NotWhole(Exception):
    """The file is not what the listing said (grew, emptied) or lies behind a DFS or symbolic
    link no open has followed yet: read it by streaming instead (smbclient's open follows
    links, and a DFS link's referral is known from then on)."""


def read_whole(unc: str, path: str, hint: int, kw: dict) -> tuple[SourceEntry, bytes]:
    """`path`'s version and bytes, asking for `hint` + 1 bytes (a file that grew reads apart).
    Raises NotWhole when it must be streamed instead, smbprotocol's errors otherwise."""
    tree, name = resolved(unc, kw)  # through a DFS link smbclient's opens have followed
    connection = tree.session.connection
    if hint >= connection.max_read_size:
        raise NotWhole(path)
    requests = [
        packed.create(name, _READ, SHARE_ALL, CreateOptions.FILE_NON_DIRECTORY_FILE),
        packed.query_info(InfoType.SMB2_0_INFO_FILE,
                          FileInformationClass.FILE_INTERNAL_INFORMATION, 8)]
    if hint:
        requests.append(packed.read(hint + 1))
    requests.append(packed.close())
    sent = connection.send_compound(requests, tree.session.session_id, tree.tree_connect_id,
                                    related=True)
    replies = _receive_all(connection, sent)
    created = _CREATED.unpack_from(replies[0])
    offset, length = _INFO.unpack_from(replies[1])
    (file_id,) = _FILE_ID.unpack_from(replies[1], offset - _HEADER)
    data = b""
    if hint:
        offset, length = _READ_REPLY.unpack_from(replies[2])
        data = replies[2][offset - _HEADER:offset - _HEADER + length]
    mtime, change, size = created
    if len(data) != size:
        raise NotWhole(path)
    return SourceEntry(path, size, filetime_ns(mtime), str(file_id),
                       change_ns=filetime_ns(change)), data


def _receive_all(connection, sent: list) -> list[bytes]:
    """Every reply's body, each received (smbprotocol keeps a reply until it is). A failed
    CREATE fails the rest of the compound with it: the first error is raised, once all are in;
    a short file's READ (END_OF_FILE: emptied since it was listed) and a DFS or symbolic link
    are NotWhole."""
    bodies: list[bytes] = []
    first: BaseException | None = None
    for request in sent:
        try:
            bodies.append(connection.receive(request, timeout=REPLY_TIMEOUT_S,
                                             resolve_symlinks=False)["data"].get_value())
        except SMBResponseException as exc:
            first = first or exc
        except Exception as exc:
            if connection_lost(exc):
                raise
            first = first or exc
    if first is not None:
        if getattr(first, "status", None) in (END_OF_FILE, PATH_NOT_COVERED, packed.SYMLINK_STOP):
            raise NotWhole() from first
        raise first
    return bodies
