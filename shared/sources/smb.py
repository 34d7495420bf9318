"""SMB backend of `Source`, on smbprotocol (1.17) and its smbclient layer.

What it relies on (see shared/notes/library-facts.md):
- every call passes `port=` and this instance's own `connection_cache`: one connector's session
  never serves another, and the process-wide cache is never touched;
- files are opened with `share_access="rwd"`: the file server's users are never locked out;
- a connection the server dropped is thrown away, so the next call connects again.
Reads pipeline in smb_read; writes and deletes (conditional ones too) live in smb_write.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator

import smbclient
from smbclient._io import SMBDirectoryIO, SMBFileIO, SMBFileTransaction, SMBRawIO, query_info
from smbprotocol.exceptions import (NoMoreFiles, NoSuchFile, SMBConnectionClosed, SMBException,
                                    SMBOSError)
from smbprotocol.file_info import FileAttributes, FileInformationClass, FileInternalInformation
from smbprotocol.open import (FilePipePrinterAccessMask, QueryDirectoryFlags,
                              SMB2QueryInfoRequest, SMB2QueryInfoResponse)
from smbprotocol.security_descriptor import SMB2CreateSDBuffer

from shared import errors
from shared.sources.base import DeltaCursor, ListFailure, Listing, SourceEntry
from shared.sources.smb_read import PipelinedReader, WholeFile
from shared.sources.smb_write import SmbWriter

log = logging.getLogger(__name__)

READ_CHUNK = 2 * 1024 * 1024  # x READS_IN_FLIGHT: with 8 MiB parts a worker peaks ~135 MiB on 1 GiB
READS_IN_FLIGHT = 3
DIR_BUFFER = 1024 * 1024  # QUERY_DIRECTORY reply size: ~10,000 names per round trip
CREDIT_WINDOW = 2048  # asked for on connect; smbprotocol fails, never waits, when credits run out
OWNER_THREADS = 8
SMALL_FILE = 1024 * 1024  # by the listed size: fetched whole in one round trip
_END_OF_FILE = 0xC0000011

# NTSTATUS -> failure class. Anything not here from the server is a plain SyncError.
_STATUS: dict[int, type[errors.SyncError]] = {
    0xC0000022: errors.PermissionDenied,  # ACCESS_DENIED
    0xC0000061: errors.PermissionDenied,  # PRIVILEGE_NOT_HELD
    0xC0000034: errors.NotFound,  # OBJECT_NAME_NOT_FOUND
    0xC000003A: errors.NotFound,  # OBJECT_PATH_NOT_FOUND
    0xC000000F: errors.NotFound,  # NO_SUCH_FILE
    0xC0000225: errors.NotFound,  # NOT_FOUND (smbclient's answer for a missing share)
    0xC00000CC: errors.NotFound,  # BAD_NETWORK_NAME (no such share)
    0xC0000056: errors.NotFound,  # DELETE_PENDING
    0xC0000103: errors.NotFound,  # NOT_A_DIRECTORY (a parent is a file)
    0xC0000033: errors.InvalidName,  # OBJECT_NAME_INVALID
    0xC0000039: errors.InvalidName,  # OBJECT_PATH_INVALID
    0xC000003B: errors.InvalidName,  # OBJECT_PATH_SYNTAX_BAD
    0xC000006D: errors.AuthFailed,  # LOGON_FAILURE
    0xC000006A: errors.AuthFailed,  # WRONG_PASSWORD
    0xC0000064: errors.AuthFailed,  # NO_SUCH_USER
    0xC000006E: errors.AuthFailed,  # ACCOUNT_RESTRICTION
    0xC0000071: errors.AuthFailed,  # PASSWORD_EXPIRED
    0xC0000072: errors.AuthFailed,  # ACCOUNT_DISABLED
    0xC0000224: errors.AuthFailed,  # PASSWORD_MUST_CHANGE
    0xC0000234: errors.AuthFailed,  # ACCOUNT_LOCKED_OUT
    0xC000007F: errors.QuotaExceeded,  # DISK_FULL
    0xC0000044: errors.QuotaExceeded,  # QUOTA_EXCEEDED
    _END_OF_FILE: errors.SourceChanged,  # shorter than when opened
    0xC0000043: errors.Transient,  # SHARING_VIOLATION: someone holds it exclusively, for now
    0xC000009A: errors.Transient,  # INSUFFICIENT_RESOURCES
    0xC00000B5: errors.Transient,  # IO_TIMEOUT
}
# The session or connection is gone: drop it so the next call logs on again.
_DEAD_SESSION = {0xC00000C9, 0xC0000203, 0xC000035C}  # NETWORK_NAME_DELETED, USER_SESSION_DELETED,
# NETWORK_SESSION_EXPIRED
_DEAD = (SMBConnectionClosed, ConnectionError, TimeoutError, EOFError)
_NAME_SURROGATE = 0x20000000  # reparse tag bit of symlinks, junctions, mount points
_REPARSE = FileAttributes.FILE_ATTRIBUTE_REPARSE_POINT
_DIRECTORY = FileAttributes.FILE_ATTRIBUTE_DIRECTORY
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def mtime_ns(when: datetime) -> int:
    """smbprotocol gives datetimes (whole microseconds): the same value from list, stat and open."""
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "ntstatus", None) or getattr(exc, "status", None)


def connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, _DEAD) or _status(exc) in _DEAD_SESSION:
        return True
    # smbprotocol: a reply that never came, or a receive on a worker that stopped.
    return isinstance(exc, SMBException) and not _status(exc) and (
        "timeout" in str(exc).lower() or "not connected" in str(exc).lower())


def to_sync_error(exc: BaseException, path: str | None) -> errors.SyncError:
    """The one mapping from smbprotocol/socket errors to our failure classes."""
    if isinstance(exc, errors.SyncError):
        exc.path = exc.path if exc.path is not None else path
        return exc
    message = f"{type(exc).__name__}: {exc}"
    status = _status(exc)
    if status in _STATUS:
        return _STATUS[status](message, path)
    if connection_lost(exc) or (isinstance(exc, OSError) and not status):
        return errors.Transient(message, path)  # refused, reset, unreachable, timed out
    if "credits" in str(exc):
        return errors.Transient(message, path)  # the connection is busy: later is fine
    if any(word in type(exc).__name__ for word in ("Authentication", "Spnego", "BadMech")):
        return errors.AuthFailed(message, path)  # failed before the server said LOGON_FAILURE
    return errors.SyncError(message, path)


class SmbSource(SmbWriter):
    def __init__(self, host: str, share: str, base_path: str = "", *, port: int = 445,
                 username: str, password: str, domain: str = "", encrypt: bool | None = None,
                 connection_cache: dict | None = None, chunk_size: int = READ_CHUNK,
                 reads_in_flight: int = READS_IN_FLIGHT, connection_timeout: int = 30):
        self.host, self.share, self.port = host, share, port
        self.base = base_path.strip("/").replace("/", "\\")
        self.chunk_size, self.reads_in_flight = chunk_size, reads_in_flight
        self._user = f"{domain}\\{username}" if domain else username
        self._password, self._encrypt, self._timeout = password, encrypt, connection_timeout
        self._cache: dict = {} if connection_cache is None else connection_cache
        self._key = f"{host.lower()}:{port}"  # smbclient's key in the cache
        self._lock = threading.Lock()
        self._widened = None  # the connection whose credit window we widened

    # --- plumbing -----------------------------------------------------------------------

    def _unc(self, path: str = "") -> str:
        parts = path.split("/") if path else []
        if any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
            # '..' would climb out of base_path (the server only keeps us inside the share).
            raise errors.InvalidName(f"not a relative '/'-separated path: {path!r}", path)
        return "\\\\" + "\\".join([self.host, self.share, *filter(None, [self.base]), *parts])

    def _kw(self) -> dict:
        """For every smbclient call. Credentials too: smbclient logs on again if it must."""
        return {"port": self.port, "connection_cache": self._cache, "username": self._user,
                "password": self._password, "encrypt": self._encrypt,
                "connection_timeout": self._timeout}

    def _connect(self) -> bool:
        """Log on unless a live session exists; True when this call connected."""
        with self._lock:
            conn = self._cache.get(self._key)
            if conn is not None and conn.transport.connected and conn.session_table:
                fresh = False
            else:
                self._drop_locked()
                conn = smbclient.register_session(self.host, **self._kw()).connection
                fresh = True
            if conn is not self._widened:  # also one smbclient reconnected on its own
                # A new connection has ~64 credits; threads sharing it (owners, readers with
                # 64-credit READs in flight) would fail with "requires N credits".
                conn.echo(sid=next(iter(conn.session_table)), credit_request=CREDIT_WINDOW)
                self._widened = conn
            return fresh

    def _drop_locked(self, log_off: bool = False) -> None:
        """Forget the connection. Log off only on a healthy one: on a hung one it would hang."""
        for conn in list(self._cache.values()):
            with contextlib.suppress(Exception):
                conn.disconnect(close=log_off, timeout=5)
        self._cache.clear()

    def _drop(self, log_off: bool = False) -> None:
        with self._lock:
            self._drop_locked(log_off)

    def _fail(self, exc: BaseException, path: str | None) -> errors.SyncError:
        error = to_sync_error(exc, path)
        if connection_lost(exc) or isinstance(error, errors.AuthFailed):
            self._drop()  # never reuse a broken connection or a half-made session
        return error

    def _call(self, path: str, fn, *args, retry: bool = True, **kwargs):
        """Run fn mapped to our errors; once more if a connection we had cached proved dead."""
        for attempt in (1, 2) if retry else (2,):
            fresh = True
            try:
                fresh = self._connect()
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - everything leaves as a SyncError
                error = self._fail(exc, path)
                if attempt == 1 and not fresh and connection_lost(exc):
                    log.info("SMB connection to %s was lost; reconnecting", self._key)
                    continue
                raise error from exc

    # --- listing ------------------------------------------------------------------------

    def list(self, cursor: DeltaCursor | None = None) -> Listing:
        listing = Listing()
        folders = [""]  # to walk; depth-first keeps this to about width x depth
        seen: set[int] = set()  # folder ids: Samba follows symlinks, so loops are possible
        while folders:
            folder = folders.pop()
            try:
                # The root goes through _call: it (re)connects and tells auth failures apart.
                scan = self._call(folder, self._open_folder, folder) if not folder else \
                    self._open_folder(folder)
                with scan as d:
                    for raw in self._entries(d):
                        self._add(listing, folders, seen, folder, raw)
            except Exception as exc:  # noqa: BLE001 - recorded, never raised
                error = self._fail(exc, folder)
                listing.failures.append(ListFailure(folder, error.cause, str(error)))
                if not folder or connection_lost(exc.__cause__ or exc):
                    listing.complete = False  # the walk broke off: its silence proves nothing
                    break
        return listing

    def _open_folder(self, folder: str) -> SMBDirectoryIO:
        d = SMBDirectoryIO(self._unc(folder), share_access="rwd", **self._kw())
        d.open()
        return d

    def _entries(self, d: SMBDirectoryIO) -> Iterator:
        size = min(DIR_BUFFER, d.fd.connection.max_transact_size)
        flags = QueryDirectoryFlags.SMB2_RESTART_SCANS
        while True:
            try:
                batch = d.fd.query_directory(
                    "*", FileInformationClass.FILE_ID_FULL_DIRECTORY_INFORMATION, flags=flags,
                    max_output=size)
            except (NoMoreFiles, NoSuchFile):
                return
            flags = 0
            yield from batch

    def _add(self, listing: Listing, folders: list, seen: set, folder: str, raw) -> None:
        file_id = raw["file_id"].get_value()
        try:
            name = raw["file_name"].get_value().decode("utf-16-le")
        except UnicodeDecodeError:  # lone surrogate from a Windows server: no valid name
            name = raw["file_name"].get_value().decode("utf-16-le", "replace")
            path = f"{folder}/{name}" if folder else name
            listing.failures.append(ListFailure(path, errors.EncodingIssue.cause,
                                                "name is not valid UTF-16: skipped"))
            return
        if name in (".", ".."):
            if name == "." and file_id:
                seen.add(file_id)
            return
        path = f"{folder}/{name}" if folder else name
        attrs = raw["file_attributes"].get_value()
        # For reparse points the EA size field holds the reparse tag (MS-FSCC 2.4.17).
        if attrs & _REPARSE and raw["ea_size"].get_value() & _NAME_SURROGATE:
            listing.failures.append(ListFailure(path, "unsupported",
                                                "symlink or junction not followed"))
        elif attrs & _DIRECTORY:
            if file_id and file_id in seen:  # a link the server followed back into the tree
                listing.failures.append(ListFailure(path, "unsupported",
                                                    "symlink or junction not followed"))
                return
            seen.add(file_id)
            folders.append(path)
        else:
            listing.entries[path] = SourceEntry(path, raw["end_of_file"].get_value(), mtime_ns(
                raw["last_write_time"].get_value()), str(file_id))

    # --- single files -------------------------------------------------------------------

    def stat(self, path: str) -> SourceEntry:
        st = self._call(path, smbclient.stat, self._unc(path), **self._kw())
        if st.st_file_attributes & _DIRECTORY:
            raise errors.NotFound("is a folder, not a file", path)
        return SourceEntry(path, st.st_size, st.st_mtime_ns // 1000 * 1000, str(st.st_ino))

    @contextlib.contextmanager
    def open_read(self, path: str, size_hint: int | None = None
                  ) -> Iterator[PipelinedReader | WholeFile]:
        if size_hint is not None and 0 <= size_hint <= SMALL_FILE:
            whole = self._call(path, self._read_small, path, size_hint)
            if whole is not None:
                yield whole
                return
        raw, file_id = self._call(path, self._open, path)
        fd = raw.fd
        reader = PipelinedReader(
            fd, SourceEntry(path, fd.end_of_file, mtime_ns(fd.last_write_time), file_id),
            self.chunk_size, self.reads_in_flight, on_error=lambda exc: self._fail(exc, path))
        try:
            yield reader
        finally:
            reader.close()  # closes raw.fd: raw must live until then (it warns if collected open)

    def _open(self, path: str) -> tuple[SMBFileIO, str]:
        """Open (never exclusively) and ask for the file id in the same round trip."""
        raw = SMBFileIO(self._unc(path), mode="r", share_access="rwd", **self._kw())
        tx = SMBFileTransaction(raw)
        raw.open(transaction=tx)
        query_info(tx, FileInternalInformation)
        tx.commit()
        return raw, str(tx.results[1]["index_number"].get_value())

    def _read_small(self, path: str, hint: int) -> WholeFile | None:
        """Open + file id + READ + close in one compound: one round trip instead of three.
        None when the file no longer fits the hint (it is streamed instead)."""
        raw = SMBFileIO(self._unc(path), mode="r", share_access="rwd", **self._kw())
        if hint >= raw.fd.connection.max_read_size:
            return None
        tx = SMBFileTransaction(raw)
        raw.open(transaction=tx)
        query_info(tx, FileInternalInformation)
        if hint:
            tx += raw.fd.read(0, hint + 1, send=False)  # +1 tells a file that grew apart
        raw.close(transaction=tx)
        try:
            tx.commit()
        except SMBOSError as exc:
            if exc.ntstatus == _END_OF_FILE:
                return None  # emptied since it was listed
            raise
        fd, data = raw.fd, tx.results[2] if hint else b""
        if len(data) != fd.end_of_file:
            return None
        file_id = str(tx.results[1]["index_number"].get_value())
        return WholeFile(SourceEntry(path, fd.end_of_file, mtime_ns(fd.last_write_time), file_id),
                         data)

    # --- owners -------------------------------------------------------------------------

    def owners(self, paths: Iterable[str]) -> dict[str, str | None]:
        """Owner SID per path; a round trip each, so OWNER_THREADS at a time."""
        paths = list(dict.fromkeys(paths))
        if not paths:
            return {}
        try:
            self._call("", smbclient._pool.get_smb_tree, self._unc(), **self._kw())
        except errors.SyncError:
            return dict.fromkeys(paths)
        with ThreadPoolExecutor(max_workers=min(OWNER_THREADS, len(paths))) as pool:
            return dict(zip(paths, pool.map(self._owner, paths)))

    def _owner(self, path: str) -> str | None:
        """SMB2 QUERY_INFO, security info type, OWNER only: open + query + close compounded."""
        try:
            raw = SMBRawIO(self._unc(path), share_access="rwd",
                           desired_access=FilePipePrinterAccessMask.READ_CONTROL, **self._kw())
            query = SMB2QueryInfoRequest()
            query["info_type"] = 3  # SMB2_0_INFO_SECURITY
            query["output_buffer_length"] = 4096
            query["additional_information"] = 0x1  # OWNER_SECURITY_INFORMATION
            query["file_id"] = raw.fd.file_id

            def owner(request) -> str:
                response = SMB2QueryInfoResponse()
                response.unpack(raw.fd.connection.receive(request)["data"].get_value())
                sd = SMB2CreateSDBuffer()
                sd.unpack(response["buffer"].get_value())
                return str(sd.get_owner())

            with SMBFileTransaction(raw) as tx:
                tx += (query, owner)
            return tx.results[0]
        except Exception as exc:  # noqa: BLE001 - unknown owner: the connector's default owner
            log.debug("owner of %s: %s", path, exc)
            if connection_lost(exc):
                self._drop()
            return None

    def close(self) -> None:
        self._drop(log_off=True)
