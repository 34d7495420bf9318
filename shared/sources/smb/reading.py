"""Pipelined reads for `SmbSource.open_read`.

smbclient's `readinto` sends one READ and waits for its reply, so a single stream moves one read
size per round trip. Here up to `depth` READs are on the wire at once (the raw `Open.read(...,
send=False)` + `Connection.send` path that smbclient itself uses, minus the wait). Memory stays
within depth x chunk: replies waiting to be consumed count against the same budget.

A connection lost mid-stream (the network, a restarted smbd, a session the server ended with
its Kerberos ticket) does not cost the bytes already read: given a `reopen`, the reader opens
the file again on a new connection and goes on from the first byte its caller has not had,
as rclone's reopening reader does, once the file proves to be the version it was reading
(same file id, size, mtime and change time: else `SourceChanged`, nothing stored). A loss
before the reopened file gave a byte is the read's failure (transient, as before).
A read may start at an offset (`start_at`): its first READ asks from there.
"""
from __future__ import annotations

import contextlib
import io
import logging
import time
from collections import deque
from collections.abc import Callable

from smbprotocol.connection import Connection
from smbprotocol.exceptions import SMBException
from smbprotocol.open import Open, SMB2ReadResponse

from shared import errors
from shared.sources.smb.ntstatus import connection_lost
from shared.sync.model import SourceEntry

log = logging.getLogger(__name__)

PAYLOAD = 65536  # one SMB2 credit pays for 64 KiB
REPLY_TIMEOUT_S = 300  # a server that went silent (no reset) must not hang a transfer forever
CREDIT_WAIT_S = 30  # other readers on the connection hold every credit for this long: give up


# Opens the file again after the connection given was lost: its handle, the version it reads
# now, and the object that must live as long as the handle (smbclient's file, which warns if
# collected open).
Reopen = Callable[[Connection], tuple[Open, SourceEntry, object]]


def credits_free(conn: Connection) -> int:
    window = conn.sequence_window
    return window["high"] - window["low"]


def credit_charge(length: int) -> int:
    return (max(length, 1) - 1) // PAYLOAD + 1


class PipelinedReader:
    """Sequential reader of one opened file, as big as it was when opened (`entry.size`)."""

    def __init__(self, fd: Open, entry: SourceEntry, chunk_size: int, depth: int = 4,
                 on_error: Callable[[BaseException, Connection], errors.SyncError] | None = None,
                 reopen: Reopen | None = None, holder: object = None):
        self.entry = entry
        self.resumed = 0  # times the read went on after a lost connection
        self._on_error = on_error
        self._reopen = reopen
        self._holder = holder
        self._chunk_size = chunk_size
        self._depth = max(1, depth)
        self._resumed_at = -1  # the offset of the last resume
        self._start(fd, 0)

    def _start(self, fd: Open, offset: int) -> None:
        """Read `fd` from `offset`, the first byte the caller has not had."""
        self._fd = fd
        self._conn: Connection = fd.connection
        self._chunk = max(PAYLOAD, min(self._chunk_size, self._conn.max_read_size))
        self._inflight: deque = deque()  # (offset, length, request), oldest first
        self._next = offset  # offset of the next READ to send
        self._cur = b""  # the reply being consumed
        self._pos = 0
        self._delivered = offset

    # --- reading ------------------------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        given = self._delivered  # a failed _read may have counted bytes it never returned
        while True:
            try:
                return self._read(size)
            except errors.SyncError as exc:
                exc.path = exc.path or self.entry.path
                raise
            except Exception as exc:
                if not self._may_resume(exc, given):
                    if self._on_error is None:
                        raise
                    raise self._on_error(exc, self._conn) from exc
                self._resume(exc, given)

    def start_at(self, offset: int) -> None:
        """Before the first read: READs begin at `offset` (`Reader.start_at`)."""
        if self._delivered or self._inflight or self._cur:
            raise ValueError("start_at comes before the first read")
        self._next = self._delivered = min(max(offset, 0), self.entry.size)

    def _may_resume(self, exc: BaseException, offset: int) -> bool:
        # A second loss at the offset of the last resume: the new connection gave nothing.
        return self._reopen is not None and connection_lost(exc) and offset != self._resumed_at

    def _resume(self, exc: BaseException, offset: int) -> None:
        """Open the file again on a new connection and go on at `offset` if it is unchanged."""
        self._inflight.clear()  # their replies died with the connection
        assert self._reopen is not None
        lost = self._fd
        fd, now, holder = self._reopen(self._conn)  # drops the lost connection first
        with contextlib.suppress(Exception):  # fails at once now (a hung one would hang)
            lost.close()
        old = self.entry
        if now != old:  # the same path: its file id, size, mtime or change time differ
            self._fd, self._holder = fd, holder
            raise errors.SourceChanged(
                f"the file changed while its read waited for a new connection (at byte {offset})",
                old.path)
        log.info("SMB read lost its connection at byte %d of %d; going on from there on a "
                 "new connection", offset, old.size)
        self._holder, self._resumed_at = holder, offset
        self.resumed += 1
        self._start(fd, offset)

    def _read(self, size: int) -> bytes:
        left = self.entry.size - self._delivered
        size = left if size is None or size < 0 else min(size, left)
        parts: list[bytes] = []
        while size > 0:
            if self._pos == len(self._cur):
                self._cur, self._pos = self._next_reply(), 0
            take = min(size, len(self._cur) - self._pos)
            if self._pos == 0 and take == len(self._cur):
                parts.append(self._cur)  # whole reply: no copy
            else:
                parts.append(self._cur[self._pos:self._pos + take])
            self._pos += take
            size -= take
            self._delivered += take
        if self._pos == len(self._cur):
            self._cur, self._pos = b"", 0  # free the spent reply before the caller works
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readable(self) -> bool:
        return True

    def _next_reply(self) -> bytes:
        self._cur = b""  # spent: not part of the memory held from here on
        # Top up while the oldest is still counted: it plus depth-1 others stay on the wire
        # while it is consumed.
        self._fill(self._depth)
        if not self._inflight:  # every READ answered, yet short of the opened size
            raise errors.SourceChanged("file shrank while being read", None)
        offset, length, request = self._inflight.popleft()
        reply = SMB2ReadResponse()
        reply.unpack(self._conn.receive(request, timeout=REPLY_TIMEOUT_S)["data"].get_value())
        data = reply["buffer"].get_value()
        if len(data) != length:
            # Shorter than asked before the size it had when opened: it shrank under us.
            raise errors.SourceChanged(
                f"read {len(data)} of {length} bytes at offset {offset}: file shrank while read",
                None)
        return data

    def _fill(self, slots: int) -> None:
        """Send READs until `slots` are on the wire or the opened size is covered."""
        while len(self._inflight) < slots and self._next < self.entry.size:
            length = min(self._chunk, self.entry.size - self._next)
            free = credits_free(self._conn)
            if free < credit_charge(length):
                if self._inflight:
                    return  # a reply will hand credits back: send more then
                length = self._await_credits(length)
            if not self._send(length):
                if self._inflight:
                    return
                time.sleep(0.01)  # another thread took the credits first: try again
                continue
            self._next += length

    def _send(self, length: int) -> bool:
        msg, _ = self._fd.read(self._next, length, send=False)
        charge = credit_charge(length)
        # Ask for what we spend, plus enough to let the window grow to a full pipeline.
        want = self._depth * credit_charge(self._chunk) + 16
        grow = max(0, want - credits_free(self._conn))
        try:
            request = self._conn.send(msg, sid=self._fd.tree_connect.session.session_id,
                                      tid=self._fd.tree_connect.tree_connect_id,
                                      credit_request=charge + grow)
        except SMBException as exc:
            if "credits" in str(exc):
                return False  # raised before anything went on the wire
            raise
        self._inflight.append((self._next, length, request))
        return True

    def _await_credits(self, length: int) -> int:
        """Nothing in flight and too few credits (other threads hold them): shrink, or wait."""
        deadline = time.monotonic() + CREDIT_WAIT_S
        while (free := credits_free(self._conn)) < 1:
            if time.monotonic() > deadline:
                raise errors.Transient("no SMB credits left on the connection", None)
            time.sleep(0.01)
        return min(length, free * PAYLOAD)

    # --- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Collect replies still on the wire (smbprotocol keeps them until received), then close."""
        while self._inflight:
            _, _, request = self._inflight.popleft()
            try:
                self._conn.receive(request)
            except Exception:
                pass
        self._cur = b""
        with contextlib.suppress(Exception):
            self._fd.close()


class WholeFile:
    """A small file fetched in one round trip, held in memory (at most SMALL_FILE bytes)."""

    def __init__(self, entry: SourceEntry, data: bytes):
        self.entry = entry
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    def start_at(self, offset: int) -> None:
        self._data.seek(min(max(offset, 0), self.entry.size))

    def readable(self) -> bool:
        return True
