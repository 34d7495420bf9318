"""The server side of each backend under conformance test, and helpers the tests share."""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest

from shared.sources.base import Source

SID = re.compile(r"^S-1-\d+(-\d+)+$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]+$")
MiB = 1024 * 1024


class SmbRemote:
    """The server side of an SmbSource: the Samba share's directory on this machine."""

    # What the backend's server can do; tests of what it cannot skip on these.
    has_symlinks = True
    has_folder_permissions = True  # a folder the service account may not list
    changes_in_place = True  # a file can shrink under an open reader
    can_drop_connections = True
    can_restart = True
    owner_pattern = SID  # what owners() answers
    mtime_resolution_ns = 1000
    walks_by_folder = True  # Source.walk yields a folder at a time
    syncs_folders = True  # empty folders listed, made, removed; delete/move remove emptied ones
    wrong_credentials = {"password": "not-the-password"}

    def __init__(self, samba) -> None:
        self.samba = samba
        self.base = f"conf-{uuid.uuid4().hex[:10]}"
        self.root: Path = samba.mkdir(self.base)
        self.sources: list[Source] = []
        self.source_at = (samba.share, self.base)  # the share and folder sources are made on

    def make_source(self, **overrides) -> Source:
        from shared.sources.smb.source import SmbSource

        s = self.samba
        kw = {"port": s.port, "username": s.username, "password": s.password, **overrides}
        source = SmbSource(s.host, *self.source_at, **kw)
        self.sources.append(source)
        return source

    def put(self, rel: str, data: bytes, owner: str | None = None) -> Path:
        return self.samba.write_file(f"{self.base}/{rel}", data, owner=owner)

    def mkdir(self, rel: str) -> Path:
        return self.samba.mkdir(f"{self.base}/{rel}")

    def set_mtime(self, rel: str, ns: int) -> None:
        os.utime(self.root / rel, ns=(ns, ns))

    def remove_base(self) -> None:
        shutil.rmtree(self.root)

    def put_beside_base(self, name: str, data: bytes) -> Path:
        """A file next to the source's base folder: out of its reach."""
        return self.samba.write_file(f"{self.base}-{name}", data)

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def modify(self, rel: str, data: bytes) -> None:
        with open(self.root / rel, "r+b") as f:
            f.write(data)
            f.truncate()

    def truncate(self, rel: str, size: int) -> None:
        os.truncate(self.root / rel, size)

    def save_from_another_client(self, rel: str, data: bytes) -> None:
        """A colleague's program saves over SMB, in place, on a session of its own."""
        import smbclient

        s = self.samba
        unc = f"\\\\{s.host}\\{s.share}\\{self.base}\\" + rel.replace("/", "\\")
        with smbclient.open_file(unc, mode="wb", share_access="rwd", port=s.port,
                                 username=s.username, password=s.password,
                                 connection_cache={}) as f:
            f.write(data)

    def delete(self, rel: str) -> None:
        (self.root / rel).unlink()

    def rename(self, old: str, new: str) -> None:
        self.samba.mkdir(f"{self.base}/{new}".rpartition("/")[0])
        os.rename(self.root / old, self.root / new)

    def make_unreadable(self, rel: str) -> None:
        self.samba.make_unreadable_dir(f"{self.base}/{rel}")

    def symlink(self, rel: str, target: str) -> None:
        os.symlink(target, self.root / rel)

    def restart(self) -> None:
        self.samba.restart()

    def drop_connections(self) -> None:
        """The network between clients and server fails (the server keeps running)."""
        assert self.samba.drop_connections() >= 1

    @contextlib.contextmanager
    def connection_cut_while_listing(self, source, after: int, times: int = 1):
        """The network drops once `after` names of a folder have been read, in the first
        `times` readings of a folder that long (a folder read again is counted afresh)."""
        real, cuts = source._entries, 0

        def entries(d):
            nonlocal cuts
            for seen, raw in enumerate(real(d), 1):
                if seen == after and cuts < times:
                    cuts += 1
                    self.drop_connections()
                yield raw

        source._entries = entries
        try:
            yield
        finally:
            del source._entries

    @contextlib.contextmanager
    def connection_cut_while_asking_owners(self, after: int, times: int = 1):
        """The network drops once `after` owners have been read, `times` times in all (the
        count starts afresh after each cut)."""
        from shared.sources.smb import owners

        real, read, cuts = owners._collect, 0, 0

        def collect(*args):
            nonlocal read, cuts
            read += 1
            if read == after and cuts < times:
                cuts, read = cuts + 1, 0
                self.drop_connections()
            return real(*args)

        owners._collect = collect
        try:
            yield
        finally:
            owners._collect = real

    @contextlib.contextmanager
    def connection_cut_when_reopened(self, source, times: int = 1):
        """The network drops again right after a read opened its file anew, `times` times."""
        real, cuts = source._open_version, 0

        def open_version(path, lost=None):
            nonlocal cuts
            opened = real(path, lost)
            if cuts < times:
                cuts += 1
                self.drop_connections()
            return opened

        source._open_version = open_version
        try:
            yield
        finally:
            del source._open_version

    def cleanup(self) -> None:
        for source in self.sources:
            source.close()
        for path, dirs, _ in os.walk(self.root):  # unreadable folders too
            for d in dirs:
                os.chmod(os.path.join(path, d), 0o755)
        shutil.rmtree(self.root, ignore_errors=True)


class SmbDfsRemote(SmbRemote):
    """An SmbSource on the DFS root `dfs` whose folder is a DFS link (named apart from its
    target) leading to the test's folder of `data` on "another server" (this one, by the name
    `localhost`: a connection and a session of its own): every call goes by referral to another
    share, where the names the share knows differ from the connector's."""

    def __init__(self, samba) -> None:
        super().__init__(samba)
        self.link = samba.dfs_link(f"via-{self.base}", self.base, host="localhost")
        self.source_at = (samba.dfs_share, self.link)

    def cleanup(self) -> None:
        super().cleanup()
        (self.samba.dfs_dir / self.link).unlink(missing_ok=True)


class SharePointRemote:
    """The server side of a SharePointSource: its own document library in the Graph emulator."""

    has_symlinks = False
    has_folder_permissions = False  # permissions are per site/item, not in the emulator
    changes_in_place = False  # a new version is a new blob: a download keeps serving its own
    can_drop_connections = False
    can_restart = False
    owner_pattern = EMAIL
    mtime_resolution_ns = 1_000_000_000  # lastModifiedDateTime has whole seconds
    walks_by_folder = False  # paths come from parent ids once every delta page is in
    syncs_folders = True  # as SMB: from delta, made, removed with If-Match on the folder's eTag
    wrong_credentials = {"client_secret": "not-the-secret"}
    domain = "contoso.com"

    def __init__(self, graph) -> None:
        self.graph = graph
        self.site = graph.add_site("contoso.sharepoint.com", f"/sites/conf-{uuid.uuid4().hex[:10]}")
        self.drive = graph.add_library(self.site, "Documents")
        self.sources: list[Source] = []

    def endpoint(self, **overrides):
        from shared.sources.sharepoint.graph import GraphEndpoint

        g = self.graph
        return GraphEndpoint(authority=g.authority, graph_base=g.graph_base, ca_bundle=g.ca_pem,
                             **overrides)

    def credentials(self, **overrides):
        from shared.sources.sharepoint.graph import GraphCredentials

        g = self.graph
        kw = {"tenant_id": g.tenant_id, "client_id": g.client_id, **overrides}
        if "certificate_pem" not in kw:
            kw.setdefault("client_secret", g.client_secret)
        return GraphCredentials(**kw)

    def make_source(self, *, endpoint: dict | None = None, **creds) -> Source:
        from shared.sources.sharepoint.source import SharePointSource

        source = SharePointSource(self.endpoint(**(endpoint or {})), self.credentials(**creds),
                                  self.drive.id)
        self.sources.append(source)
        return source

    def email(self, owner: str) -> str:
        return f"{owner}@{self.domain}"

    def put(self, rel: str, data: bytes, owner: str | None = None):
        return self.graph.put_file(self.drive, rel, data,
                                   created_by_email=self.email(owner) if owner else None)

    def mkdir(self, rel: str):
        return self.graph.mkdir(self.drive, rel)

    def set_mtime(self, rel: str, ns: int) -> None:
        self.graph.set_modified(self.drive, rel, ns / 1e9)

    def remove_base(self) -> None:
        self.graph.remove_library(self.drive)

    def put_beside_base(self, name: str, data: bytes) -> RemoteFile:
        """A file in another library of the same site: out of the source's reach."""
        other = self.graph.add_library(self.site, f"Other {uuid.uuid4().hex[:6]}")
        self.graph.put_file(other, name, data)
        return RemoteFile(self.graph, other, name)

    def read(self, rel: str) -> bytes:
        return self.graph.item(self.drive, rel).data

    def save_from_another_client(self, rel: str, data: bytes) -> None:
        """A colleague uploads a new version through Graph."""
        self.make_source().write(rel, io.BytesIO(data), len(data))

    def exists(self, rel: str) -> bool:
        return self.graph.item(self.drive, rel) is not None

    def modify(self, rel: str, data: bytes) -> None:
        self.graph.put_file(self.drive, rel, data)

    def truncate(self, rel: str, size: int) -> None:
        self.graph.put_file(self.drive, rel, self.read(rel)[:size])

    def rename(self, old: str, new: str) -> None:
        self.graph.move(self.drive, old, new)

    def delete(self, rel: str) -> None:
        self.graph.delete(self.drive, rel)

    def cleanup(self) -> None:
        for source in self.sources:
            source.close()
        if self.drive.id in self.graph.tenant.drives:
            self.graph.remove_library(self.drive)  # frees the emulator's memory


class RemoteFile:
    """A file on the Graph emulator, with the bits of `pathlib.Path` the tests use."""

    def __init__(self, graph, drive, name: str) -> None:
        self.graph, self.drive, self.name = graph, drive, name

    def read_bytes(self) -> bytes:
        return self.graph.item(self.drive, self.name).data

    def unlink(self) -> None:
        self.graph.delete(self.drive, self.name)
        self.graph.remove_library(self.drive)


def needs(remote, capability: str, why: str) -> None:
    """Skip a test of something this backend's server cannot do (a capability attribute)."""
    if not getattr(remote, capability):
        pytest.skip(f"{type(remote).__name__} {why}")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_all(source: Source, path: str, step: int | None = None) -> bytes:
    with source.open_read(path) as reader:
        if step is None:
            return reader.read()
        parts = []
        while chunk := reader.read(step):
            assert len(chunk) <= step
            parts.append(chunk)
        return b"".join(parts)


def in_threads(fn, args: list) -> None:
    """Call fn(arg) for every arg at once, each in its own thread, and wait for them all; the
    first exception a thread raised is raised here (a thread still running after 60 s fails)."""
    failures: list[BaseException] = []

    def run(arg) -> None:
        try:
            fn(arg)
        except BaseException as e:  # handed to the caller below
            failures.append(e)

    threads = [threading.Thread(target=run, args=(a,), daemon=True) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a thread was still running after 60 s"
    if failures:
        raise failures[0]


def recorded_waits(source, really: bool = False) -> list[float]:
    """Our own throttling waits (not the SDK's), recorded; skipped unless `really` (the
    session's clock then moves by what it skipped, as if it had waited)."""
    waits: list[float] = []
    real = source.graph.sleep
    skipped = [0.0]

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if really:
            await real(seconds)
        else:
            skipped[0] += seconds

    source.graph.sleep = sleep
    source.graph.clock = lambda: time.monotonic() + skipped[0]
    return waits

