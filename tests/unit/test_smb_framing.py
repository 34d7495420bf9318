"""The connection every SMB source makes packs its requests' headers and reads its replies'
with `struct` (`shared.sources.smb.framing`): the bytes it sends are smbprotocol's own for
the same messages (signed or not, compounded and related, on a DFS tree, charged for a large
READ), and what it hands each waiting request of a reply is what smbprotocol's reply thread
hands it: the same status, body, credits, and the same error for a failure. A header packed
wrong here would be refused by the file server or, worse, its signature checked against the
wrong bytes."""
from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest
from smbprotocol.connection import Connection, Dialects
from smbprotocol.exceptions import SMBException, SMBResponseException
from smbprotocol.file_info import FileInformationClass, InfoType
from smbprotocol.header import Commands, NtStatus, Smb2Flags, SMB2HeaderResponse
from smbprotocol.open import CreateOptions, SMB2QueryInfoRequest

from shared.sources.smb import packed_requests as packed
from shared.sources.smb.framing import HEADER, LeanConnection, ReplyHeader
from shared.sources.smb.plumbing import SHARE_ALL

KEY = bytes(range(16))
SESSION, TREE = 0x4400000001, 7


class Wire:
    """A transport: keeps what is sent, gives the replies queued (then the socket closed)."""

    connected = True

    def __init__(self, replies: list[bytes] | None = None):
        self.sent: list[bytes] = []
        self.replies: list = list(replies or [])

    def send(self, data) -> None:
        self.sent.append(data if isinstance(data, bytes) else data.pack())

    def recv(self, timeout) -> bytes:
        reply = self.replies.pop(0) if self.replies else b""
        if reply is TimeoutError:
            raise TimeoutError("recv idle")
        return reply

    def close(self) -> None:
        self.connected = False


def connection(cls, *, signed: bool = True, dfs: bool = False, low: int = 5):
    conn = cls("guid", "files", 445)
    conn.transport = Wire()
    conn.dialect = Dialects.SMB_3_1_1
    conn.signing_algorithm_id = None  # AES-CMAC, as Samba negotiates it here
    conn.supports_multi_credit = True
    conn.sequence_window = {"low": low, "high": low + 200}
    conn._t_exc = None
    tree = SimpleNamespace(is_dfs_share=dfs, encrypt_data=False)
    conn.session_table[SESSION] = SimpleNamespace(
        signing_key=KEY, signing_required=signed, encrypt_data=False,
        tree_connect_table={TREE: tree})
    return conn


def small_read(name: str = "dept\\report.docx") -> list:
    return [packed.create(name, 0x89, SHARE_ALL, CreateOptions.FILE_NON_DIRECTORY_FILE),
            packed.query_info(InfoType.SMB2_0_INFO_FILE,
                              FileInformationClass.FILE_INTERNAL_INFORMATION, 8),
            packed.read(300 * 1024),  # charged 5 credits
            packed.close()]


def query_info() -> SMB2QueryInfoRequest:
    request = SMB2QueryInfoRequest()
    request["info_type"] = InfoType.SMB2_0_INFO_SECURITY
    request["output_buffer_length"] = 4096
    request["additional_information"] = 1
    request["file_id"] = b"\x01" * 16
    return request


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("dfs", [False, True])
@pytest.mark.parametrize("related", [True, False])
def test_requests_go_out_as_smbprotocol_sends_them(signed, dfs, related):
    ours, theirs = connection(LeanConnection, signed=signed, dfs=dfs), \
        connection(Connection, signed=signed, dfs=dfs)
    for messages in (small_read, lambda: [query_info()], lambda: small_read("x" * 97)):
        mine = ours._send(messages(), SESSION, TREE, related=related)
        them = theirs._send(messages(), SESSION, TREE, related=related)
        assert ours.transport.sent[-1] == theirs.transport.sent[-1]
        assert [r.message["message_id"].get_value() for r in mine] == \
            [r.message["message_id"].get_value() for r in them]
        assert [r.related_ids for r in mine] == [r.related_ids for r in them]
        assert [r.message["data"].get_value() for r in mine] == \
            [r.message["data"].get_value() for r in them]
        assert [r.message["flags"].get_value() for r in mine] == \
            [r.message["flags"].get_value() for r in them]  # a field read by smbprotocol's
    assert ours.sequence_window == theirs.sequence_window
    assert set(ours.outstanding_requests) == set(theirs.outstanding_requests)


def test_a_request_over_the_credits_left_is_refused_as_smbprotocol_refuses_it():
    for cls in (LeanConnection, Connection):
        conn = connection(cls)
        conn.sequence_window["high"] = conn.sequence_window["low"] + 3
        with pytest.raises(SMBException, match="requires 5 credits but only 3"):
            conn._send([packed.read(300 * 1024)], SESSION, TREE)


def reply(conn, request, status: int, body: bytes, *, credits: int = 2, last: bool = True,
          signed: bool = True, related: bool = False) -> bytes:
    """A reply from the file server, padded to 8 bytes unless last, signed by it."""
    flags = Smb2Flags.SMB2_FLAGS_SERVER_TO_REDIR | (Smb2Flags.SMB2_FLAGS_SIGNED if signed else 0) \
        | (Smb2Flags.SMB2_FLAGS_RELATED_OPERATIONS if related else 0)
    padding = b"" if last else b"\x00" * (-(HEADER.size + len(body)) % 8)
    message_id = request.message["message_id"].get_value()
    raw = HEADER.pack(b"\xfeSMB", 64, 1, status, request.message["command"].get_value(),
                      credits, flags, 0 if last else HEADER.size + len(body) + len(padding),
                      message_id, 0, TREE, SESSION, b"\x00" * 16) + body + padding
    if signed:
        signature = conn._generate_signature(raw, KEY, message_id, True,
                                             request.message["command"].get_value())
        raw = raw[:48] + signature + raw[64:]
    return raw


ERROR = struct.pack("<HBBI", 9, 0, 0, 0) + b"\x00"  # 2.2.2 ERROR, no context


def exchange(cls, statuses: list[int], *, tamper: bool = False):
    """A small read's compound sent and answered (one reply per status): the connection and
    its requests once the reply thread has handed every reply."""
    conn = connection(cls)
    requests = conn._send(small_read(), SESSION, TREE, related=True)
    replies = []
    for i, (request, status) in enumerate(zip(requests, statuses, strict=True)):
        body = ERROR if status else struct.pack("<HH", 89, 0) + bytes(range(40)) * (i + 1)
        replies.append(reply(conn, request, status, body, last=i == len(requests) - 1,
                             related=i > 0))
    compound = b"".join(replies)
    if tamper:
        compound = compound[:-1] + bytes([compound[-1] ^ 1])
    conn.transport.replies = [compound]
    conn._process_message_thread()
    return conn, requests


@pytest.mark.parametrize("statuses", [
    [0, 0, 0, 0],
    [NtStatus.STATUS_OBJECT_NAME_NOT_FOUND] * 4,
    [0, 0, NtStatus.STATUS_END_OF_FILE, 0]])
def test_replies_reach_their_requests_as_smbprotocol_hands_them(statuses):
    (ours, mine), (theirs, them) = exchange(LeanConnection, statuses), \
        exchange(Connection, statuses)
    assert ours._t_exc is None and theirs._t_exc is None
    assert ours.sequence_window == theirs.sequence_window
    for a, b in zip(mine, them, strict=True):
        assert a.response_event.is_set() and b.response_event.is_set()
        assert a.response.pack() == b.response.pack()
        for field in ("status", "data", "message_id", "command", "credit_response"):
            assert a.response[field].get_value() == b.response[field].get_value()
        assert a.response["flags"].has_flag(Smb2Flags.SMB2_FLAGS_RELATED_OPERATIONS) == \
            b.response["flags"].has_flag(Smb2Flags.SMB2_FLAGS_RELATED_OPERATIONS)
        if a.response["status"].get_value():
            mine_error, their_error = SMBResponseException(a.response), \
                SMBResponseException(b.response)
            assert type(mine_error) is type(their_error)
            assert str(mine_error) == str(their_error)
            assert mine_error.status == their_error.status


def test_a_reply_whose_signature_fails_ends_the_connection_as_smbprotocols_does():
    (ours, mine), (theirs, _) = exchange(LeanConnection, [0] * 4, tamper=True), \
        exchange(Connection, [0] * 4, tamper=True)
    assert "signature could not be verified" in str(ours._t_exc)
    assert str(ours._t_exc) == str(theirs._t_exc)
    assert all(r.response_event.is_set() for r in mine)  # nobody left waiting


def test_a_reply_header_reads_every_field_as_smbprotocol_does():
    conn = connection(Connection)
    (request,) = conn._send([packed.close()], SESSION, TREE)
    raw = reply(conn, request, NtStatus.STATUS_PENDING, ERROR, credits=9)
    ours = ReplyHeader(raw)
    theirs = SMB2HeaderResponse()
    theirs.unpack(raw)
    for name in theirs.fields:
        assert ours[name].get_value() == theirs[name].get_value(), name
    assert ours.command == Commands.SMB2_CLOSE and ours.credit_response == 9


def test_an_idle_connection_is_kept_alive_and_given_up_when_its_echo_goes_unanswered():
    """smbprotocol's keep-alive, kept: a receive timeout sends an ECHO on every session; a
    second one with that echo unanswered ends the connection, waking every waiting request."""
    outcomes = []
    for cls in (LeanConnection, Connection):
        conn = connection(cls)
        (waiting,) = conn._send([packed.close()], SESSION, TREE)
        conn.transport.replies = [TimeoutError, TimeoutError]
        conn._process_message_thread()
        echo = conn.transport.sent[1]
        outcomes.append((len(conn.transport.sent), echo[12:14], type(conn._t_exc),
                         str(conn._t_exc), waiting.response_event.is_set()))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == Commands.SMB2_ECHO.to_bytes(2, "little")
    assert outcomes[0][2].__name__ == "SMBConnectionClosed"
