"""The two sides of a two-way connector as its users change them, every change written to the
ledger with exactly what it displaced (tests/chaos/ledger.py says why that must be exact).

`SmbSide` works on the Samba share's folder on disk, as people on the file server do: a new
file or a new version is written beside the share (a staging folder on the same filesystem) and
swapped in atomically (`renameat2`: NOREPLACE for a create, EXCHANGE for an edit, which hands
back the displaced file); a same-size edit rewrites the file in place through one descriptor
(the same inode: only size, mtime and change time can tell); a delete renames the file out of
the share first. `S3Side` works on the bucket through the S3 API, as ScaiDrive's users do,
every write conditional on the etag just read (`If-Match`, `If-None-Match: *`; moto honours
both on PUT and DELETE, and the copy source condition on COPY); the service's folder markers
(empty objects whose key ends in "/": an empty folder) are folders, not files, renamed with
their folder. An operation that meets a
change made meanwhile (by the sync) does nothing and says so (returns False)."""
from __future__ import annotations

import ctypes
import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from shared.sources.smb.writing import is_write_temp
from tests.chaos.ledger import Ledger, digest

_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
MakeContent = Callable[[int | None], bytes]  # size wanted (None: any) -> unique content


def renameat2(old: Path, new: Path, flags: int) -> None:
    if _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(new))


class SmbSide:
    name = "smb"

    def __init__(self, root: Path, staging: Path, ledger: Ledger):
        self.root, self.staging, self.ledger = root, staging, ledger
        staging.mkdir(parents=True, exist_ok=True)

    # --- reading ---------------------------------------------------------------------------

    def tree(self) -> dict[str, str]:
        """path -> sha256 of every file (the service's hidden temp files left out)."""
        out = {}
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if is_write_temp(name):
                    continue
                full = Path(dirpath) / name
                try:
                    out[full.relative_to(self.root).as_posix()] = digest(full.read_bytes())
                except FileNotFoundError:
                    continue  # replaced or removed by the sync while we walked
        return out

    def temps(self) -> int:
        return sum(is_write_temp(n) for _d, _s, files in os.walk(self.root) for n in files)

    # --- changing ----------------------------------------------------------------------------

    def _stage(self, data: bytes) -> Path:
        path = self.staging / secrets.token_hex(8)
        path.write_bytes(data)
        os.chmod(path, 0o666)  # the service account writes over it later
        return path

    def _parent(self, path: str) -> None:
        """The folders of `path`, writable by the service account."""
        folder = (self.root / path).parent
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for d in reversed(missing):
            d.mkdir(exist_ok=True)
            os.chmod(d, 0o777)

    def create(self, path: str, make: MakeContent) -> bool:
        data = make(None)
        staged = self._stage(data)
        self._parent(path)
        try:
            renameat2(staged, self.root / path, RENAME_NOREPLACE)
        except OSError as exc:
            staged.unlink()
            if exc.errno in (errno.EEXIST, errno.ENOENT):
                return False
            raise
        self.ledger.write(self.name, path, data, "create")
        return True

    def edit(self, path: str, make: MakeContent) -> bool:
        """A new version of another size, swapped in: the old one comes back to us."""
        data = make(None)
        staged = self._stage(data)
        try:
            renameat2(staged, self.root / path, RENAME_EXCHANGE)
        except FileNotFoundError:
            staged.unlink()
            return False
        if staged.is_dir():  # the name is a folder now (renamed into place by the sync)
            renameat2(staged, self.root / path, RENAME_EXCHANGE)
            staged.unlink()
            return False
        self.ledger.write(self.name, path, data, "edit")
        self.ledger.displaced(self.name, path, digest(staged.read_bytes()), "edit")
        staged.unlink()
        return True

    def edit_same_size(self, path: str, make: MakeContent) -> bool:
        """Rewritten in place, the same size: valid only if the inode is still the file's."""
        try:
            fd = os.open(self.root / path, os.O_RDWR)
        except (FileNotFoundError, IsADirectoryError):
            return False
        try:
            old = _read_all(fd)
            data = make(len(old))
            os.pwrite(fd, data, 0)
            still_linked = os.fstat(fd).st_nlink > 0
        finally:
            os.close(fd)
        if not still_linked:  # the sync replaced the file meanwhile: nobody sees our write
            return False
        self.ledger.write(self.name, path, data, "edit_same_size")
        self.ledger.displaced(self.name, path, digest(old), "edit_same_size")
        return True

    def delete(self, path: str) -> bool:
        out = self.staging / secrets.token_hex(8)
        try:
            os.rename(self.root / path, out)
        except FileNotFoundError:
            return False
        if out.is_dir():  # a folder took the name meanwhile: put it back
            os.rename(out, self.root / path)
            return False
        self.ledger.displaced(self.name, path, digest(out.read_bytes()), "delete")
        out.unlink()
        return True

    def rename(self, old: str, new: str) -> bool:
        """A file or a folder, to a name nothing holds."""
        self._parent(new)
        try:
            renameat2(self.root / old, self.root / new, RENAME_NOREPLACE)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOENT):
                return False
            raise
        self.ledger.note(old, f"smb rename {old} -> {new}")
        return True


def _read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 1 << 20):
        parts.append(chunk)
    return b"".join(parts)


class S3Side:
    name = "s3"

    def __init__(self, s3, bucket: str, ledger: Ledger):
        self.c = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
                              aws_secret_access_key=s3.secret_key, region_name="us-east-1")
        self.bucket, self.ledger = bucket, ledger

    # --- reading ---------------------------------------------------------------------------

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.c.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                 Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])
                if not o["Key"].endswith("/")]  # folder markers (two-way empty folders)

    def read(self, key: str) -> tuple[bytes, str] | None:
        """(content, etag) or None."""
        try:
            got = self.c.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return got["Body"].read(), got["ETag"]

    def tree(self) -> dict[str, str]:
        """key -> sha256 of every file (`keys`: folder markers are folders, not files)."""
        out = {}
        for key in self.keys():
            if (got := self.read(key)) is not None:
                out[key] = digest(got[0])
        return out

    # --- changing ----------------------------------------------------------------------------

    def create(self, path: str, make: MakeContent) -> bool:
        data = make(None)
        if not self._put(path, data, IfNoneMatch="*"):
            return False
        self.ledger.write(self.name, path, data, "create")
        return True

    def edit(self, path: str, make: MakeContent) -> bool:
        return self._replace(path, make, same_size=False)

    def edit_same_size(self, path: str, make: MakeContent) -> bool:
        return self._replace(path, make, same_size=True)

    def _replace(self, path: str, make: MakeContent, same_size: bool) -> bool:
        if (got := self.read(path)) is None:
            return False
        old, etag = got
        data = make(len(old) if same_size else None)
        if not self._put(path, data, IfMatch=etag):
            return False
        op = "edit_same_size" if same_size else "edit"
        self.ledger.write(self.name, path, data, op)
        self.ledger.displaced(self.name, path, digest(old), op)
        return True

    def delete(self, path: str) -> bool:
        if (got := self.read(path)) is None:
            return False
        if not self._delete(path, got[1]):
            return False
        self.ledger.displaced(self.name, path, digest(got[0]), "delete")
        return True

    def rename(self, old: str, new: str) -> bool:
        """A copy (conditional on the etag read) to a free name, then the old key's delete."""
        if (got := self.read(old)) is None:
            return False
        try:
            self.c.copy_object(Bucket=self.bucket, Key=new, CopySourceIfMatch=got[1],
                               CopySource={"Bucket": self.bucket, "Key": old})
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                return False
            raise
        self.ledger.note(old, f"s3 rename {old} -> {new}")
        if not self._delete(old, got[1]):  # changed since: that version stays where it is
            self.ledger.note(old, f"s3 rename {old}: the old key changed meanwhile, kept")
        return True

    def rename_folder(self, old: str, new: str) -> bool:
        moved = [self.rename(key, new + key[len(old):]) for key in self.keys(old + "/")]
        return any(moved)

    def _put(self, key: str, data: bytes, **condition: str) -> bool:
        try:
            self.c.put_object(Bucket=self.bucket, Key=key, Body=data, **condition)
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                return False
            raise
        return True

    def _delete(self, key: str, etag: str) -> bool:
        try:
            self.c.delete_object(Bucket=self.bucket, Key=key, IfMatch=etag)
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                return False
            raise
        return True


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
