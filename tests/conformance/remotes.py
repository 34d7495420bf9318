"""The server side of each backend under conformance test, and helpers the tests share."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path

from shared.sources.base import Source

SID = re.compile(r"^S-1-\d+(-\d+)+$")
MiB = 1024 * 1024


class SmbRemote:
    """The server side of an SmbSource: the Samba share's directory on this machine."""

    def __init__(self, samba) -> None:
        self.samba = samba
        self.base = f"conf-{uuid.uuid4().hex[:10]}"
        self.root: Path = samba.mkdir(self.base)
        self.sources: list[Source] = []

    def make_source(self, **overrides) -> Source:
        from shared.sources.smb import SmbSource

        s = self.samba
        kw = {"port": s.port, "username": s.username, "password": s.password, **overrides}
        source = SmbSource(s.host, s.share, self.base, **kw)
        self.sources.append(source)
        return source

    def put(self, rel: str, data: bytes, owner: str | None = None) -> Path:
        return self.samba.write_file(f"{self.base}/{rel}", data, owner=owner)

    def mkdir(self, rel: str) -> Path:
        return self.samba.mkdir(f"{self.base}/{rel}")

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
    def connection_cut_while_listing(self, source, after: int):
        """The network drops once `after` names of one folder have been read."""
        real, seen = source._entries, 0

        def entries(d):
            nonlocal seen
            for raw in real(d):
                seen += 1
                if seen == after:
                    self.drop_connections()
                yield raw

        source._entries = entries
        try:
            yield
        finally:
            del source._entries

    def cleanup(self) -> None:
        for source in self.sources:
            source.close()
        for path, dirs, _ in os.walk(self.root):  # unreadable folders too
            for d in dirs:
                os.chmod(os.path.join(path, d), 0o755)
        shutil.rmtree(self.root, ignore_errors=True)


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
