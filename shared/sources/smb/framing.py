"""SMB2 message headers packed and read with `struct` (MS-SMB2 2.2.1.2), for the connection
every SMB source makes (`LeanConnection`, which `sessions.SenderBoundConnection` extends).

smbprotocol's `Connection` builds every request's header as an `SMB2HeaderRequest` and reads
every reply's into an `SMB2HeaderResponse`, Structures of per-field objects, then packs the
reply's again to check its signature: ~36 us to build one and ~58 us to read one on this
machine, four of each per small file read whole and three per owner lookup (docs/PERFORMANCE.md
§21). Here a request's header is packed in one `struct` call and a reply's read in one; the
signing, encryption, credits, message ids and the reply thread's bookkeeping are smbprotocol's
own, called as its `_send` and `_process_message_thread` call them.

What stays smbprotocol's unchanged: NEGOTIATE, SESSION_SETUP, ECHO and CANCEL (their headers
feed the preauth hash, are changed after sending or reuse a request), a message sent with a
message id or async id of its own, and every field of a header that is not read here: a
`ReplyHeader` or `RequestHeader` asked for one makes smbprotocol's Structure from the same
bytes, once (an error reply's status, for instance, so that exceptions name it as before).

Imports smbprotocol only.
"""
from __future__ import annotations

import logging
import struct
from typing import Any

from smbprotocol.connection import Connection, Request, SMB2Echo, SMB2TransformHeader
from smbprotocol.exceptions import SMBConnectionClosed, SMBException
from smbprotocol.header import (
    Commands,
    NtStatus,
    Smb2Flags,
    SMB2HeaderRequest,
    SMB2HeaderResponse,
)
from smbprotocol.transport import Tcp

log = logging.getLogger(__name__)

# ProtocolId, StructureSize, CreditCharge, Status, Command, CreditRequest/CreditResponse, Flags,
# NextCommand, MessageId, Reserved, TreeId, SessionId, Signature (the sync header: 64 bytes)
HEADER = struct.Struct("<4sHHIHHIIQIIQ16s")
_PROTOCOL = b"\xfeSMB"
_NO_SIGNATURE = b"\x00" * 16
_NEXT_COMMAND = struct.Struct("<L")
# Whose headers stay smbprotocol's: see the module's docstring.
_SMBPROTOCOLS = frozenset((Commands.SMB2_NEGOTIATE, Commands.SMB2_SESSION_SETUP,
                           Commands.SMB2_ECHO, Commands.SMB2_CANCEL))


class Known:
    """A field read here (of a header, or of a `packed_requests` body), answering as
    smbprotocol's field objects do."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def get_value(self) -> Any:
        return self.value

    def has_flag(self, flag: int) -> bool:
        return self.value & flag == flag


class ReplyHeader:
    """A reply's header read from its bytes. smbprotocol's callers ask it for fields by name;
    those below are answered from the bytes, any other (and a status that is not success or
    pending) by smbprotocol's `SMB2HeaderResponse` of the same bytes, made on the first ask."""

    __slots__ = ("raw", "status", "command", "credit_response", "flags", "message_id",
                 "session_id", "signature", "_full")

    def __init__(self, raw: bytes):
        (protocol, _, _, self.status, self.command, self.credit_response, self.flags, _,
         self.message_id, _, _, self.session_id, self.signature) = HEADER.unpack_from(raw)
        if protocol != _PROTOCOL:
            raise SMBException(f"not an SMB2 reply: protocol id {protocol!r}")
        self.raw = raw
        self._full: SMB2HeaderResponse | None = None

    def __getitem__(self, name: str) -> Any:
        if name == "data":
            return Known(self.raw[HEADER.size:])
        if name == "status" and self.status in (NtStatus.STATUS_SUCCESS,
                                                NtStatus.STATUS_PENDING):
            return Known(self.status)
        if name in ("message_id", "command", "session_id", "credit_response", "flags",
                    "signature"):
            return Known(getattr(self, name))
        return self.full()[name]

    def full(self) -> SMB2HeaderResponse:
        """smbprotocol's own reading of these bytes."""
        if self._full is None:
            self._full = SMB2HeaderResponse()
            self._full.unpack(self.raw)
        return self._full

    def pack(self) -> bytes:
        return self.raw

    def __str__(self) -> str:
        return str(self.full())


class RequestHeader:
    """A sent request's header and body (`raw`, without the compound's padding), kept on its
    smbprotocol `Request` as the header smbprotocol would keep: the fields smbprotocol reads
    of a request it sent are answered from here, any other by its `SMB2HeaderRequest` of the
    same bytes."""

    __slots__ = ("raw", "command", "message_id", "tree_id", "session_id", "_full")

    def __init__(self, raw: bytes, command: int, message_id: int, tree_id: int,
                 session_id: int):
        self.raw, self.command, self.message_id = raw, command, message_id
        self.tree_id, self.session_id = tree_id, session_id
        self._full: SMB2HeaderRequest | None = None

    def __getitem__(self, name: str) -> Any:
        if name == "data":
            return Known(self.raw[HEADER.size:])
        if name == "reserved":  # smbprotocol marks its own keep-alive echoes there
            return Known(0)
        if name in ("message_id", "command", "tree_id", "session_id"):
            return Known(getattr(self, name))
        if self._full is None:
            self._full = SMB2HeaderRequest()
            self._full.unpack(self.raw)
        return self._full[name]

    def pack(self) -> bytes:
        return self.raw


def pack_request(body: bytes, command: int, credit_charge: int, credit_request: int,
                 flags: int, next_command: int, message_id: int, tree_id: int,
                 session_id: int) -> bytes:
    """A request's header (unsigned) and body, the bytes smbprotocol's `SMB2HeaderRequest`
    packs for the same fields."""
    return HEADER.pack(_PROTOCOL, HEADER.size, credit_charge, 0, command, credit_request,
                       flags, next_command, message_id, 0, tree_id, session_id,
                       _NO_SIGNATURE) + body


class LeanConnection(Connection):
    """smbprotocol's connection with its headers packed and read by `struct`."""

    transport: Tcp

    def _send(self, messages, session_id=None, tree_id=None, message_id=None,
              credit_request=None, related=False, async_id=None, force_signature=False):
        if message_id is not None or async_id is not None or force_signature or \
                any(m.COMMAND in _SMBPROTOCOLS for m in messages):
            return super()._send(messages, session_id=session_id, tree_id=tree_id,
                                 message_id=message_id, credit_request=credit_request,
                                 related=related, async_id=async_id,
                                 force_signature=force_signature)
        session = self.session_table.get(session_id, None)
        tree = None
        flags = 0
        if tree_id and session:
            if tree_id not in session.tree_connect_table:
                raise SMBException(f"Cannot find Tree with the ID {tree_id} in the session "
                                   "tree table")
            tree = session.tree_connect_table[tree_id]
            if tree.is_dfs_share:
                flags |= Smb2Flags.SMB2_FLAGS_DFS_OPERATIONS
        signing_key = session.signing_key if session and session.signing_required else None
        if signing_key:
            flags |= Smb2Flags.SMB2_FLAGS_SIGNED
        sent, requests = [], []
        last = len(messages) - 1
        for i, message in enumerate(messages):
            body = message.pack()
            padding = b"" if i == last else b"\x00" * (-(HEADER.size + len(body)) % 8)
            with self.sequence_lock:  # as smbprotocol's _send takes a message id
                low = self.sequence_window["low"]
                credit_charge = self._calculate_credit_charge(message)
                available = self.sequence_window["high"] - low
                if credit_charge > available:
                    raise SMBException(f"Request requires {credit_charge} credits but only "
                                       f"{available} credits are available")
                self.sequence_window["low"] += credit_charge if credit_charge > 0 else 1
            raw = pack_request(
                body, message.COMMAND, credit_charge, credit_request or credit_charge,
                flags | (Smb2Flags.SMB2_FLAGS_RELATED_OPERATIONS if i and related else 0),
                0 if i == last else HEADER.size + len(body) + len(padding), low,
                tree_id or 0, session_id or 0)
            if signing_key:
                signature = self._generate_signature(raw + padding, signing_key, low, False,
                                                     message.COMMAND)
                raw = raw[:48] + signature + raw[HEADER.size:]
            sent.append(raw + padding)
            request = Request(RequestHeader(raw, message.COMMAND, low, tree_id or 0,
                                            session_id or 0),
                              type(message), self, session_id=session_id)
            self.outstanding_requests[low] = request
            requests.append(request)
        if related:
            requests[0].related_ids = [r.message.message_id for r in requests][1:]
        data: Any = b"".join(sent)
        if session and session.encrypt_data or tree and tree.encrypt_data:
            data = self._encrypt(data, session)
        self._check_worker_running()
        self.transport.send(data)
        return requests

    def _process_message_thread(self):
        """smbprotocol's reply thread, each reply's header read by `ReplyHeader`."""
        try:
            while True:
                try:
                    b_msg = self.transport.recv(self._receive_timeout)
                except TimeoutError as ex:
                    self._keep_alive(ex)
                    continue
                if not b_msg:  # the socket closed
                    return
                encrypted = b_msg[:4] == b"\xfdSMB"
                if encrypted:
                    b_msg = self._decrypted(b_msg)
                next_command = -1
                while next_command != 0:
                    (next_command,) = _NEXT_COMMAND.unpack_from(b_msg, 20)
                    length = next_command or len(b_msg)
                    self._deliver(ReplyHeader(b_msg[:length]), encrypted)
                    b_msg = b_msg[length:]
        except Exception as exc:
            log.exception("SMB receive worker died (outstanding=%d)",
                          len(self.outstanding_requests))
            self._t_exc = exc  # raised to the next caller (smbprotocol's _check_worker_running)
            self.disconnect(False)
        finally:  # nobody is left waiting on a reply that will not come
            for request in self.outstanding_requests.values():
                request.response_event.set()

    def _decrypted(self, b_msg: bytes) -> bytes:
        msg = SMB2TransformHeader()
        msg.unpack(b_msg)
        return self._decrypt(msg)

    def _deliver(self, header: ReplyHeader, encrypted: bool) -> None:
        """Hand a reply to its request, as smbprotocol's reply thread does."""
        message_id = header.message_id
        request = self.outstanding_requests[message_id]
        command = header.command
        session_id = header.session_id if command == Commands.SMB2_SESSION_SETUP \
            else request.session_id
        if not encrypted:  # a decrypted reply was verified by its decryption
            self.verify_signature(header, session_id)
        credit_response = header.credit_response
        if credit_response == 0 and not self.supports_multi_credit:
            credit_response += 1
        with self.sequence_lock:
            self.sequence_window["high"] += credit_response
        if command == Commands.SMB2_NEGOTIATE:
            self.preauth_integrity_hash_value.append(header.raw)
        elif command == Commands.SMB2_SESSION_SETUP and \
                header.status == NtStatus.STATUS_MORE_PROCESSING_REQUIRED:
            self.preauth_integrity_session_hash_value[message_id].append(header.raw)
        with request.response_event_lock:
            if header.flags & Smb2Flags.SMB2_FLAGS_ASYNC_COMMAND:
                request.async_id = header.raw[32:40]
            request.response = header
            request.response_event.set()
            if request.message["reserved"].get_value() == 1:  # smbprotocol's keep-alive
                self.outstanding_requests.pop(message_id, None)

    def _keep_alive(self, ex: TimeoutError) -> None:
        """No reply for the receive timeout: smbprotocol's echo on every session, or the
        connection given up if the last echo went unanswered."""
        for r in self.outstanding_requests.values():
            if r.response is None and r.message["command"].get_value() == Commands.SMB2_ECHO \
                    and r.message["reserved"].get_value() == 1:
                raise SMBConnectionClosed(
                    "Connection timed out. Server did not respond within timeout.") from ex
        log.debug("Sending SMB2 Echo to keep connection alive")
        for sid in self.session_table.keys():
            req = self.send(SMB2Echo(), sid=sid)
            req.message["reserved"] = 1
