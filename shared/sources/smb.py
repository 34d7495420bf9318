"""SMB backend of `Source`, on smbprotocol's smbclient.

Facts this relies on (see ../shared/notes/library-facts.md): every call passes `port=` and this
instance's own `connection_cache` (one tenant's session never serves another); reads open with
`share_access="rwd"` so the file server's users are never locked out; a cached connection that
the server dropped is reset before the error surfaces as `Transient`.
"""
from __future__ import annotations

import contextlib
import io
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import BinaryIO, Iterable, Iterator

import smbclient
from smbclient._io import SMBFileTransaction, SMBRawIO
from smbprotocol.exceptions import SMBConnectionClosed, SMBException, SMBOSError, SMBResponseException
from smbprotocol.file_info import FileAttributes
from smbprotocol.open import FilePipePrinterAccessMask, SMB2QueryInfoRequest, SMB2QueryInfoResponse
from smbprotocol.security_descriptor import SMB2CreateSDBuffer

from shared import errors
from shared.sources.base import ListFailure, Listing, SourceEntry

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_STATUS = {  # NTSTATUS -> our failure classes
    0xC0000022: errors.PermissionDenied,  # ACCESS_DENIED
    0xC0000034: errors.NotFound,  # OBJECT_NAME_NOT_FOUND
    0xC000003A: errors.NotFound,  # OBJECT_PATH_NOT_FOUND
    0xC000000F: errors.NotFound,  # NO_SUCH_FILE
    0xC0000033: errors.InvalidName,  # OBJECT_NAME_INVALID
    0xC000006D: errors.AuthFailed,  # LOGON_FAILURE
    0xC000006E: errors.AuthFailed,  # ACCOUNT_RESTRICTION
    0xC0000072: errors.AuthFailed,  # ACCOUNT_DISABLED
    0xC0000071: errors.AuthFailed,  # PASSWORD_EXPIRED
    0xC00000CC: errors.NotFound,  # BAD_NETWORK_NAME (no such share)
    0xC0000043: errors.Transient,  # SHARING_VIOLATION (someone holds it exclusively)
    0xC0000011: errors.SourceChanged,  # END_OF_FILE before the size it was opened with
}
_SKIP_ATTRS = FileAttributes.FILE_ATTRIBUTE_REPARSE_POINT
READ_CHUNK = 2 * 1024 * 1024
SMALL_FILE = 1024 * 1024  # read in one compound round trip (create + read + close)
READS_IN_FLIGHT = 3  # with 8 MiB parts: peak RSS ~145 MiB moving a 1 GiB file
_PAYLOAD = 65536  # one SMB2 credit per 64 KiB
CREDIT_RESERVE = 16  # left for the other threads' opens and stats on the same connection
CREDIT_GROWTH = 64
CREDIT_FLOOR = 256  # below this, an ECHO asks the server for more  # extra credits asked with each read, so the window grows to fit pipelining


def mtime_ns(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


class SmbSource:
    def __init__(self, host: str, share: str, base_path: str = "", *, port: int = 445,
                 username: str, password: str, domain: str = "", encrypt: bool | None = None,
                 chunk_size: int = READ_CHUNK):
        self.host, self.port, self.share = host, port, share
        self.base = base_path.strip("/").replace("/", "\\")
        self._user = f"{domain}\\{username}" if domain else username
        self._password = password
        self._encrypt = encrypt
        self.chunk_size = chunk_size
        self.cache: dict = {}  # this instance's own smbprotocol connection cache
        self._lock = threading.Lock()

    # --- plumbing -----------------------------------------------------------------------

    def _unc(self, path: str = "") -> str:
        parts = [p for p in (self.base, path.replace("/", "\\")) if p]
        return "\\\\" + "\\".join([self.host, self.share, *parts])

    def _kw(self) -> dict:
        """On every call: credentials too, so smbclient can re-establish a dropped session."""
        return {"port": self.port, "connection_cache": self.cache, "username": self._user,
                "password": self._password, "encrypt": self._encrypt}

    def _ensure_credits(self) -> None:
        """smbprotocol starts with a handful of SMB credits and fails (never waits) when they
        run out: threads sharing the connection would starve. Ask for a large window once."""
        key = f"{self.host.lower()}:{self.port}"
        with self._lock:
            conn = self.cache.get(key)
            if conn is None or not conn.session_table:
                smbclient.register_session(self.host, **self._kw())
                conn = self.cache[key]
            window = conn.sequence_window["high"] - conn.sequence_window["low"]
            if window < CREDIT_FLOOR:
                conn.echo(sid=next(iter(conn.session_table)), credit_request=CREDIT_FLOOR * 2)

    def _reset(self) -> None:
        with self._lock:
            with contextlib.suppress(Exception):
                smbclient.reset_connection_cache(fail_on_error=False, connection_cache=self.cache)
            self.cache.clear()

    def _error(self, exc: BaseException, path: str) -> errors.SyncError:
        """Classify an smbprotocol error; drop the connection only if it is dead."""
        status = getattr(exc, "ntstatus", None) or getattr(exc, "status", None)
        cls = _STATUS.get(status) if status else None
        dead = isinstance(exc, (SMBConnectionClosed, ConnectionError, EOFError))
        if cls is None and (dead or isinstance(exc, TimeoutError) or "credits" in str(exc)):
            cls = errors.Transient
        if cls is None and "auth" in type(exc).__name__.lower():
            cls = errors.AuthFailed
        if cls is None:
            cls = errors.SyncError
        if dead:
            self._reset()
        return cls(f"{type(exc).__name__}: {exc}", path)

    @contextlib.contextmanager
    def _mapped(self, path: str) -> Iterator[None]:
        try:
            self._ensure_credits()
            yield
        except errors.SyncError:
            raise
        except (SMBException, OSError, EOFError, ValueError) as exc:
            raise self._error(exc, path) from exc

    # --- Source -------------------------------------------------------------------------

    def list(self) -> Listing:
        listing = Listing()
        folders = [""]
        while folders:
            folder = folders.pop()
            try:
                with self._mapped(folder):
                    for entry in smbclient.scandir(self._unc(folder), **self._kw()):
                        self._add(listing, folders, folder, entry)
            except errors.SyncError as exc:
                listing.failures.append(ListFailure(folder, exc.cause, str(exc)))
                if not exc.permanent or not folder:
                    listing.complete = False  # the walk itself broke: nothing is certain
                    break
        return listing

    def _add(self, listing: Listing, folders: list, folder: str, entry) -> None:
        info = entry.smb_info
        path = f"{folder}/{info.file_name}" if folder else info.file_name
        if info.file_attributes & _SKIP_ATTRS:
            listing.failures.append(ListFailure(path, "unsupported",
                                                "symlink or junction: not followed"))
        elif info.file_attributes & FileAttributes.FILE_ATTRIBUTE_DIRECTORY:
            folders.append(path)
        else:
            listing.entries[path] = SourceEntry(path, info.end_of_file,
                                                mtime_ns(info.last_write_time), str(info.file_id))

    def stat(self, path: str) -> SourceEntry:
        with self._mapped(path):
            st = smbclient.stat(self._unc(path), **self._kw())
        if st.st_file_attributes & FileAttributes.FILE_ATTRIBUTE_DIRECTORY:
            raise errors.NotFound("is a folder, not a file", path)
        return SourceEntry(path, st.st_size, mtime_ns(
            datetime.fromtimestamp(st.st_mtime, timezone.utc)), str(st.st_ino))

    @contextlib.contextmanager
    def open_read(self, path: str, size_hint: int | None = None) -> Iterator["SmbReader"]:
        if size_hint and size_hint <= SMALL_FILE:
            whole = self._read_whole(path, size_hint)
            if whole is not None:
                yield whole
                return
        with self._mapped(path):
            raw = smbclient.open_file(self._unc(path), mode="rb", buffering=0,
                                      share_access="rwd", **self._kw())
        try:
            yield SmbReader(self, raw, path)
        finally:
            with contextlib.suppress(Exception):
                raw.close()

    def _read_whole(self, path: str, size: int) -> "WholeFile | None":
        """Create + read + close as one compound request: one round trip for a small file.
        None when the file has grown past what was asked (then it is streamed)."""
        try:
            with self._mapped(path):
                raw = SMBRawIO(self._unc(path), mode="rb", share_access="rwd", **self._kw())
                with SMBFileTransaction(raw) as tx:
                    tx += raw.fd.read(0, size + 1, send=False)  # +1: tells a grown file apart
        except errors.SourceChanged:
            return None  # END_OF_FILE at offset 0: the file is empty now
        data, fd = tx.results[0], raw.fd
        if len(data) != fd.end_of_file:
            return None
        return WholeFile(SourceEntry(path, fd.end_of_file, mtime_ns(fd.last_write_time)), data)

    def write(self, path: str, data: BinaryIO, size: int) -> SourceEntry:
        parent = path.rpartition("/")[0]
        with self._mapped(path):
            if parent:
                smbclient.makedirs(self._unc(parent), exist_ok=True, **self._kw())
            with smbclient.open_file(self._unc(path), mode="wb", share_access="r",
                                     **self._kw()) as f:
                while chunk := data.read(self.chunk_size):
                    f.write(chunk)
        return self.stat(path)

    def delete(self, path: str) -> None:
        with self._mapped(path):
            smbclient.remove(self._unc(path), **self._kw())

    def owners(self, paths: Iterable[str]) -> dict[str, str | None]:
        """Owner SID per path: one compound open+query+close each, 8 in flight."""
        paths = list(paths)
        if not paths:
            return {}
        with self._mapped(""):
            pass  # connect and size the credit window before the threads start
        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(zip(paths, pool.map(self._owner, paths)))

    def _owner(self, path: str) -> str | None:
        try:
            raw = SMBRawIO(self._unc(path), mode="rb", share_access="rwd",
                           desired_access=FilePipePrinterAccessMask.READ_CONTROL, **self._kw())
            with SMBFileTransaction(raw) as tx:
                req = SMB2QueryInfoRequest()
                req["info_type"] = 3  # SMB2_0_INFO_SECURITY
                req["output_buffer_length"] = 65535
                req["additional_information"] = 0x1  # OWNER_SECURITY_INFORMATION
                req["file_id"] = raw.fd.file_id

                def receive(request):
                    response = raw.fd.connection.receive(request)
                    query = SMB2QueryInfoResponse()
                    query.unpack(response["data"].get_value())
                    sd = SMB2CreateSDBuffer()
                    sd.unpack(query["buffer"].get_value())
                    return str(sd.get_owner())

                tx += (req, receive)
            return tx.results[0]
        except Exception:  # an owner we cannot read maps to the system owner, never a failure
            return None

    def close(self) -> None:
        self._reset()


class WholeFile:
    """A small file already in memory (at most SMALL_FILE bytes)."""

    def __init__(self, entry: SourceEntry, data: bytes):
        self.entry = entry
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


class SmbReader:
    """Reads ahead with several READ requests in flight (smbclient's own reads wait for each
    reply: throughput = read size / round trip). Memory: in flight x chunk + what `read` returns."""

    def __init__(self, source: SmbSource, raw: SMBRawIO, path: str):
        fd = raw.fd
        # The CREATE reply has size and mtime but not the file id (the scan's id stands).
        self.entry = SourceEntry(path, fd.end_of_file, mtime_ns(fd.last_write_time))
        self._source, self._raw, self._fd, self._path = source, raw, fd, path
        self._chunk = min(source.chunk_size, fd.connection.max_read_size)
        self._next = 0  # offset of the next READ to send
        self._inflight: deque = deque()
        self._buf = bytearray()
        self._done = 0  # bytes received

    def read(self, size: int = -1) -> bytes:
        want = self.entry.size - self._done + len(self._buf) if size < 0 else size
        try:
            while len(self._buf) < want and (self._inflight or self._next < self.entry.size):
                self._fill()
                self._receive()
        except (SMBException, OSError) as exc:
            raise self._source._error(exc, self._path) from exc
        if len(self._buf) < want and self._done < self.entry.size:
            raise errors.SourceChanged("file shrank while being read", self._path)
        out = bytes(self._buf[:want])
        del self._buf[:want]
        return out

    def _fill(self) -> None:
        """Send READs while credits allow, keeping a reserve for the other threads that share
        this connection (smbclient does not wait for credits: it fails)."""
        fd = self._fd
        conn = fd.connection
        while len(self._inflight) < READS_IN_FLIGHT and self._next < self.entry.size:
            available = conn.sequence_window["high"] - conn.sequence_window["low"]
            spare = available - CREDIT_RESERVE
            if spare < 1 and self._inflight:
                return  # wait for a reply: it grants credits back
            length = min(self._chunk, self.entry.size - self._next, max(spare, 1) * _PAYLOAD)
            charge = (length - 1) // _PAYLOAD + 1
            msg, receive = fd.read(self._next, length, send=False)
            try:
                request = conn.send(msg, sid=fd.tree_connect.session.session_id,
                                    tid=fd.tree_connect.tree_connect_id,
                                    credit_request=charge + CREDIT_GROWTH)
            except SMBException:
                if self._inflight:  # another thread took the credits meanwhile
                    return
                raise
            self._inflight.append((self._next, request, receive))
            self._next += length

    def _receive(self) -> None:
        offset, request, receive = self._inflight.popleft()
        data = receive(request)
        if offset != self._done or (not data and self._done < self.entry.size):
            raise errors.SourceChanged("file shrank while being read", self._path)
        self._buf += data
        self._done += len(data)
