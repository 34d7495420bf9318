"""One SMB source's connections, one to each file server it reaches (its own, and those its DFS
links lead to), kept under smbclient's key (`server:port`): the `connection_cache` every
smbclient call of the source is given.

Every connection in it is made by the source's own logon, never by smbclient: smbclient's
`register_session`, which makes one when the cache answers none alive, is not safe across
threads. Several first opens through a link at once (a transfer worker's readers) each made a
connection to the link's server, set up a session on a connection another thread had just
stored, and ran out of its single credit ("requires 1 credits but only 0 are available"). Here,
the cache asked for a server it holds no live session to logs on to it, once: the source's
logon (encryption decided from what that server offers, the wait under a watchdog, the credit
window widened); smbclient then finds the session ready and only connects its tree. One logon
per server is in flight at a time, and the threads that ask meanwhile share its outcome: a
server that never answers costs them one wait together, not one each in turn.

Each connection is a `SenderBoundConnection` (smbprotocol's connection with its messages'
headers packed and read by `framing.LeanConnection`): a request's reply is waited for on the
connection the request went out on. smbclient's file transaction, once a CREATE met a DFS link
(PATH_NOT_COVERED) and it reopened the file on the link's server, received the rest of the
failed compound on that server's connection instead: that took another thread's request of the
same message id off it, and the connection's reader then died on its reply (KeyError), leaving
every thread waiting on that connection hanging.

Imports `framing` only of ours: the logon is handed in.
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from smbprotocol.connection import Connection

from shared.sources.smb.framing import LeanConnection

Logon = Callable[[str, int], Connection]  # (server, port) -> a connection with a session


class SenderBoundConnection(LeanConnection):
    """smbprotocol's connection (headers by `framing`), receiving a request sent on another
    connection there."""

    def receive(self, request, wait=True, timeout=None, resolve_symlinks=True):
        sender: Connection = getattr(request, "_connection", self)  # smbprotocol's Request
        if sender is not self:
            return sender.receive(request, wait=wait, timeout=timeout,
                                  resolve_symlinks=resolve_symlinks)
        return super().receive(request, wait=wait, timeout=timeout,
                               resolve_symlinks=resolve_symlinks)


def live(conn: Connection | None) -> bool:
    """Whether `conn` is connected and holds a session (smbclient would use it as it is)."""
    return conn is not None and bool(conn.transport.connected) and bool(conn.session_table)


def _own_copy(exc: BaseException) -> BaseException:
    """A shared logon's failure for one more thread: a copy, so that the file path its caller
    puts on it is that thread's own (the same object if it cannot be copied)."""
    try:
        return copy.copy(exc)
    except Exception:
        return exc


class _Logon:
    """One logon in flight: its connection or its failure, once `done`."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.conn: Connection | None = None
        self.error: BaseException | None = None


class SessionPool(dict):
    """smbclient's connection cache whose lookups of a server not logged on to log on to it
    (`get` is smbclient's only way in). A connection is stored once its session is ready: a
    thread finding it never finds a half-made one."""

    def __init__(self, logon: Logon):
        super().__init__()
        self._logon = logon
        self._in_flight: dict[str, _Logon] = {}
        self._in_flight_lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Connection:
        """The live connection to `key`'s server, logged on to now if there is none (the
        logon's failure is raised, as smbclient's own would be)."""
        conn = super().get(key)
        return conn if live(conn) else self.log_on(key)

    def log_on(self, key: str) -> Connection:
        """Log on to `key`'s server unless a live session to it is kept; a logon already in
        flight to it is waited for and its outcome shared (its failure raised here too)."""
        with self._in_flight_lock:
            conn = super().get(key)
            if live(conn):
                return conn
            flight = self._in_flight.get(key)
            leading = flight is None
            if flight is None:
                flight = self._in_flight[key] = _Logon()
        if not leading:
            flight.done.wait()
            if flight.error is not None:
                raise _own_copy(flight.error)
            assert flight.conn is not None
            return flight.conn
        try:
            server, _, port = key.rpartition(":")
            flight.conn = self[key] = self._logon(server, int(port))
            return flight.conn
        except BaseException as exc:
            flight.error = _own_copy(exc)  # kept as it was: this thread's caller changes exc
            raise
        finally:
            with self._in_flight_lock:
                del self._in_flight[key]
            flight.done.set()

    def holds_live(self, key: str) -> bool:
        """Whether a live session to `key`'s server is kept (nothing is made)."""
        return live(super().get(key))
