"""SMB backend of `Source`, on smbprotocol (1.17) and its smbclient layer.

What it relies on (see shared/notes/library-facts.md):
- every call passes `port=` and this instance's own `connection_cache`: one connector's session
  never serves another, and the process-wide cache is never touched;
- every message is signed (`require_signing=True`, also on a connection smbclient remakes by
  itself) or, better, encrypted: `encryption` "auto" encrypts whenever the server offers SMB3
  encryption, "required" refuses a server that does not (before sending the credentials), "off"
  asks for none (a server or share that demands it still gets it);
- files are opened with `share_access="rwd"`: the file server's users are never locked out;
- a connection the server dropped is thrown away, so the next call connects again;
- the account logs on with NTLM, or with Kerberos (`auth="kerberos"`: a ticket for
  `user@REALM` from the realm's KDC, as the host's krb5 configuration finds it, for the service
  `cifs/<server as named>`); the protocol is always named, never "negotiate", which would try
  Kerberos first for every connector wherever gssapi is installed.
Listing lives in listing, owner SIDs in owners, pipelined reads in reading, small files whole
in small_reads, writes and deletes in writing, renames in moving, folders (made, removed,
respelled) in folders.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Literal

import smbclient
from smbclient._io import SMBFileIO, SMBFileTransaction, query_info
from smbclient._pool import ClientConfig
from smbprotocol.connection import Connection
from smbprotocol.exceptions import BadNetworkName, SMBException
from smbprotocol.file_info import FileInternalInformation
from smbprotocol.open import Open
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from shared import errors
from shared.config.active_directory import kerberos_principal, logon_name
from shared.sources.smb.access_check import SmbAccessCheck
from shared.sources.smb.folders import SmbFolders
from shared.sources.smb.listing import _DIRECTORY, SmbLister
from shared.sources.smb.moving import SmbMover
from shared.sources.smb.ntstatus import connection_lost, mtime_ns, to_sync_error
from shared.sources.smb.owners import SmbOwners
from shared.sources.smb.reading import PipelinedReader, WholeFile
from shared.sources.smb.sessions import SenderBoundConnection, SessionPool
from shared.sources.smb.small_reads import NotWhole, read_whole
from shared.sources.smb.writing import SmbWriter
from shared.sync.model import SourceEntry, Versioned

__all__ = ["SmbSource", "connection_lost", "mtime_ns", "to_sync_error"]
log = logging.getLogger(__name__)
LOGON_TIMEOUT_S = 30.0  # a SESSION_SETUP left unanswered this long: the logon failed

READ_CHUNK = 2 * 1024 * 1024  # x READS_IN_FLIGHT: with 8 MiB parts a worker peaks ~135 MiB on 1 GiB
READS_IN_FLIGHT = 3
CREDIT_WINDOW = 2048  # asked for on connect; smbprotocol fails, never waits, when credits run out
SMALL_FILE = 1024 * 1024  # by the listed size: fetched whole in one round trip
Encryption = Literal["auto", "required", "off"]
Auth = Literal["ntlm", "kerberos"]


def _opened(path: str, fd, file_id: str) -> SourceEntry:
    """The version an open handle reads (its CREATE response's times and size)."""
    return SourceEntry(path, fd.end_of_file, mtime_ns(fd.last_write_time), file_id,
                       change_ns=mtime_ns(fd.change_time))


def wants_encryption(mode: Encryption, offered: bool) -> bool:
    """Whether to seal the session; refuses `required` when the server offers no encryption."""
    if mode == "required" and not offered:
        raise errors.EncryptionUnavailable(
            "smb_encryption is 'required' but the server offers no SMB3 encryption (SMB 2.x "
            "only, or `server smb encrypt = off`): not connecting in plaintext")
    return mode == "required" or (mode == "auto" and offered)


class SmbSource(SmbLister, SmbOwners, SmbWriter, SmbMover, SmbFolders, SmbAccessCheck):
    def __init__(self, host: str, share: str, base_path: str = "", *, port: int = 445,
                 username: str, password: str, domain: str = "", encryption: Encryption = "auto",
                 auth: Auth = "ntlm", chunk_size: int = READ_CHUNK,
                 reads_in_flight: int = READS_IN_FLIGHT, connection_timeout: int = 30):
        if encryption not in ("auto", "required", "off"):
            raise ValueError(f"encryption must be auto, required or off, not {encryption!r}")
        self.host, self.share, self.port = host, share, port
        self.base = base_path.strip("/").replace("/", "\\")
        self.chunk_size, self.reads_in_flight = chunk_size, reads_in_flight
        if auth not in ("ntlm", "kerberos"):
            raise ValueError(f"auth must be ntlm or kerberos, not {auth!r}")
        self.auth = auth
        # NTLM: CORP\svc, svc@corp.example.com or svc; Kerberos: svc@CORP.EXAMPLE.COM
        self._user = kerberos_principal(username, domain) if auth == "kerberos" else \
            logon_name(username, domain)
        self._password, self._timeout = password, connection_timeout
        self.encryption = encryption
        self._cache = SessionPool(self._logon)  # this source's own: never another connector's
        self._key = f"{host.lower()}:{port}"  # smbclient's key in the cache
        self._lock = threading.Lock()  # drops, and the connect to our own server

    # --- plumbing -----------------------------------------------------------------------

    def _unc(self, path: str = "") -> str:
        parts = path.split("/") if path else []
        if any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
            # '..' would climb out of base_path (the server only keeps us inside the share).
            raise errors.InvalidName(f"not a relative '/'-separated path: {path!r}", path)
        return "\\\\" + "\\".join([self.host, self.share, *filter(None, [self.base]), *parts])

    def _kw(self) -> dict:
        """For every smbclient call: the cache logs on for smbclient (sessions), which finds
        our session by the user's name."""
        return {"port": self.port, "connection_cache": self._cache, "username": self._user,
                "connection_timeout": self._timeout, "require_signing": True,
                "auth_protocol": self.auth}

    def _connect(self) -> bool:
        """Log on unless a live session exists; True when this call connected."""
        with self._lock:
            if self._cache.holds_live(self._key):
                return False
            self._drop_locked()
            self._cache.log_on(self._key)
            return True

    def _logon(self, server: str, port: int) -> Connection:
        """A connection with a session to `server` (ours, or one a DFS link leads to; as the
        cache's key names it), for the cache to keep. One at a time for each server
        (`SessionPool.log_on`)."""
        own = f"{server}:{port}" == self._key
        conn, seal = self._negotiate(self.host if own else server, port)
        self._authenticate(conn, seal, own)
        return conn

    def _negotiate(self, server: str, port: int) -> tuple[Connection, bool]:
        """Connect and NEGOTIATE (signing required); whether to seal the session, decided from
        what the server offers: a refused `required` never sends the credentials."""
        conn = SenderBoundConnection(ClientConfig().client_guid, server, port,
                                     require_signing=True)
        try:
            conn.connect(timeout=self._timeout)
        except SMBException as exc:  # connected, then the NEGOTIATE failed or went unanswered
            with contextlib.suppress(Exception):
                conn.disconnect(close=False)  # its socket and receive thread go too
            if connection_lost(exc):  # a server that takes connections and never answers
                raise errors.Transient(f"the file server {server} did not answer the logon "
                                       f"within {self._timeout} s") from exc
            raise
        try:
            return conn, wants_encryption(self.encryption, bool(conn.supports_encryption))
        except errors.SyncError:
            conn.disconnect(close=False)
            raise

    def _authenticate(self, conn: Connection, seal: bool, own: bool) -> None:
        """SESSION_SETUP (and, on our own server, the share's TREE_CONNECT), then widen the
        credit window; a failure closes the connection.

        smbprotocol waits for the SESSION_SETUP and TREE_CONNECT answers without a timeout:
        a server that never answers would hold this scan or job (and its slot, and its run's
        lease, renewed meanwhile) for good. The share's tree is connected here, not on
        smbclient's first open, so both waits are under the watchdog: past the limit the
        transport is closed, which wakes the wait with an error (a transient failure)."""
        fired = threading.Event()

        def give_up() -> None:
            fired.set()  # before the disconnect, which the failing logon may race
            conn.disconnect(close=False)

        limit = max(self._timeout, LOGON_TIMEOUT_S)
        watchdog = threading.Timer(limit, give_up)
        watchdog.start()
        try:
            session = Session(conn, username=self._user, password=self._password,
                              require_encryption=seal, auth_protocol=self.auth)
            session.connect()
            if own:  # smbclient finds this tree in the session by name and uses it for every
                # open (on a link's server, smbclient connects the share the link leads to)
                with contextlib.suppress(BadNetworkName):  # no such share, or a DFS root: the
                    TreeConnect(session, f"\\\\{self.host}\\{self.share}").connect(  # open
                        require_secure_negotiate=ClientConfig().require_secure_negotiate)  # tells
            # A new connection has ~64 credits; threads sharing it (owners, readers with
            # 64-credit READs in flight) would fail with "requires N credits".
            conn.echo(sid=session.session_id, credit_request=CREDIT_WINDOW)
        except Exception as exc:
            with contextlib.suppress(Exception):  # a half-made session is never kept
                conn.disconnect(close=False)
            if fired.is_set():
                raise errors.Transient(f"the file server {conn.server_name} did not answer the "
                                       f"logon within {limit:.0f} s") from exc
            raise
        finally:
            watchdog.cancel()

    def _drop_locked(self, log_off: bool = False,
                     only: Sequence[Connection] | None = None) -> None:
        """Forget the connections (`only` these, those of them still kept). Log off only on a
        healthy one: on a hung one it would hang."""
        for key, conn in list(self._cache.items()):
            if only is not None and not any(conn is gone for gone in only):
                continue
            with contextlib.suppress(Exception):
                conn.disconnect(close=log_off, timeout=5)
            del self._cache[key]

    def _drop(self, log_off: bool = False, only: Sequence[Connection] | None = None) -> None:
        with self._lock:
            self._drop_locked(log_off, only)

    def _kept(self) -> list[Connection]:
        """The connections kept now: what a call beginning now may use (`_fail`'s `used`)."""
        return list(self._cache.values())

    def _fail(self, exc: BaseException, path: str | None,
              used: Sequence[Connection] | None = None) -> errors.SyncError:
        """`exc` as our error; a lost connection or a refused logon drops the connections the
        failed call may have used (`used`, as kept when it began; None: all). One made again
        meanwhile by another thread's call stays: dropping it failed that call too."""
        error = to_sync_error(exc, path)
        if connection_lost(exc) or isinstance(error, errors.AuthFailed):
            self._drop(only=used)  # never reuse a broken connection or a half-made session
        return error

    def _call(self, path: str, fn, *args, retry: bool = True, **kwargs):
        """Run fn mapped to our errors; once more if a connection we had cached proved dead."""
        for attempt in (1, 2) if retry else (2,):
            fresh, used = True, None
            try:
                fresh = self._connect()
                used = self._kept()
                return fn(*args, **kwargs)
            except Exception as exc:
                error = self._fail(exc, path, used)
                if attempt == 1 and not fresh and connection_lost(exc):
                    log.info("SMB connection to %s was lost; reconnecting", self._key)
                    continue
                raise error from exc

    # --- single files -------------------------------------------------------------------

    def stat(self, path: str) -> SourceEntry:
        st = self._call(path, smbclient.stat, self._unc(path), **self._kw())
        if st.st_file_attributes & _DIRECTORY:
            raise errors.NotFound("is a folder, not a file", path)
        return SourceEntry(path, st.st_size, st.st_mtime_ns // 1000 * 1000, str(st.st_ino),
                           change_ns=st.st_chgtime_ns // 1000 * 1000)

    @contextlib.contextmanager
    def open_read(self, path: str, size_hint: int | None = None, *,
                  expect: Versioned | None = None) -> Iterator[PipelinedReader | WholeFile]:
        if size_hint is not None and 0 <= size_hint <= SMALL_FILE:
            whole = self._call(path, self._read_small, path, size_hint)
            if whole is not None:
                yield whole
                return
        fd, entry, raw = self._open_version(path)
        reader = PipelinedReader(
            fd, entry, self.chunk_size, self.reads_in_flight,
            on_error=lambda exc, conn: self._fail(exc, path, [conn]),
            reopen=lambda lost: self._open_version(path, lost), holder=raw)
        try:
            yield reader
        finally:
            reader.close()  # closes raw.fd: raw must live until then (it warns if collected open)

    def _open_version(self, path: str, lost: Connection | None = None
                      ) -> tuple[Open, SourceEntry, SMBFileIO]:
        """The open file, the version it reads and smbclient's file object; after `lost` was
        found lost, on a new connection (unless another thread already made one)."""
        if lost is not None:
            self._drop(only=[lost])
        raw, file_id = self._call(path, self._open, path)
        return raw.fd, _opened(path, raw.fd, file_id), raw

    def _open(self, path: str) -> tuple[SMBFileIO, str]:
        """Open (never exclusively) and ask for the file id in the same round trip."""
        raw = SMBFileIO(self._unc(path), mode="r", share_access="rwd", **self._kw())
        tx = SMBFileTransaction(raw)
        raw.open(transaction=tx)
        query_info(tx, FileInternalInformation)
        tx.commit()
        return raw, str(tx.results[1]["index_number"].get_value())

    def _read_small(self, path: str, hint: int) -> WholeFile | None:
        """Open + file id + READ + close in one compound (small_reads): one round trip instead
        of three. None when the file no longer fits the hint (it is streamed instead)."""
        try:
            return WholeFile(*read_whole(self._unc(path), path, hint, self._kw()))
        except NotWhole:
            return None

    def close(self) -> None:
        self._drop(log_off=True)
