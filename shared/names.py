"""Name rules: source paths -> object keys that can never escape their share or prefix.

Keys keep the source's bytes (no Unicode normalisation: `é` as NFC and NFD are two different
files on the source and stay two objects). Anything S3 or the platform cannot hold safely is a
per-file failure naming the cause, never a silent rename.
"""
from __future__ import annotations

import re
import urllib.parse

from shared.errors import EncodingIssue, InvalidName

MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def clean_prefix(prefix: str) -> str:
    """'' or 'a/b' (no leading/trailing slash), validated like a path."""
    prefix = prefix.strip("/")
    if prefix:
        check_path(prefix)
    return prefix


def check_path(path: str) -> None:
    """Raise InvalidName / EncodingIssue if `path` cannot be stored as an object key."""
    if not path or path.startswith("/"):
        raise InvalidName(f"empty or absolute path {path!r}", path)
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidName(f"path segment {segment!r} is not allowed", path)
        if "\\" in segment:
            raise InvalidName("backslash in a name", path)
        if _CONTROL.search(segment):
            raise InvalidName("control character in a name", path)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodingIssue("name is not valid Unicode (lone surrogate)", path) from None


def object_key(prefix: str, path: str) -> str:
    check_path(path)
    key = f"{prefix}/{path}" if prefix else path
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidName(f"path longer than the target's {MAX_KEY_BYTES}-byte key limit", path)
    return key


def path_of_key(prefix: str, key: str) -> str | None:
    """The relative path of an object key under `prefix`, None if it lies outside."""
    if not prefix:
        return key
    return key[len(prefix) + 1:] if key.startswith(prefix + "/") else None


def metadata_value(text: str) -> str:
    """S3 user metadata must be ASCII: percent-encode (reversibly) the original name."""
    return urllib.parse.quote(text, safe="/ ")
