"""A bucket's objects as a scan compares them: each key with its size and etag, a page (1,000
keys) at a time, through minio's own signed request (ListObjectsV2, keys URL-encoded, as
minio's `list_objects` asks).

minio's `list_objects` makes an `Object` of every key, every field parsed through ElementPath
and its time through `strptime`: 40% of a no-change scan's CPU (py-spy, a 20,000-file library,
docs/PERFORMANCE.md §24). A scan needs the key, the size and the etag: the page is parsed once
(ElementTree's C parser) and only those three read from each entry. What minio decodes is
decoded the same way (a key `unquote_plus`, an etag without its quotes), which
tests/storage/test_bucket_listing.py checks against `list_objects` on the S3 server.

May import: minio, `shared.errors`.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import NamedTuple
from urllib.parse import unquote_plus

from minio import Minio

from shared.errors import Transient

PAGE = 1000  # keys a request, S3's largest page
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class ListedObject(NamedTuple):
    key: str
    size: int
    etag: str


def listed_objects(client: Minio, bucket: str, prefix: str | None) -> Iterator[ListedObject]:
    """Every object under `prefix` (None: the whole bucket), in key order, as pages arrive."""
    token: str | None = None
    while True:
        query = {"list-type": "2", "delimiter": "", "encoding-type": "url",
                 "max-keys": str(PAGE), "prefix": prefix or ""}
        if token:
            query["continuation-token"] = token
        response = client._execute("GET", bucket, query_params=query)  # type: ignore[arg-type]
        page = ET.fromstring(response.data)
        url = _text(page, "EncodingType") == "url"
        yield from (_object(entry, url) for entry in page.iter(_NS + "Contents"))
        if (_text(page, "IsTruncated") or "").lower() != "true":
            return
        token = _text(page, "NextContinuationToken")
        if not token:
            raise Transient(f"bucket {bucket}: a listing page cut short without a token", "")


def _object(entry: ET.Element, url: bool) -> ListedObject:
    key = size = etag = None
    for field in entry:
        tag = field.tag
        if tag == _NS + "Key":
            key = field.text or ""
        elif tag == _NS + "Size":
            size = int(field.text or 0)
        elif tag == _NS + "ETag":
            etag = (field.text or "").replace('"', "")
    if key is None:
        raise Transient("a bucket listing's entry without a key", "")
    return ListedObject(unquote_plus(key) if url else key, size or 0, etag or "")


def _text(page: ET.Element, name: str) -> str | None:
    found = page.find(_NS + name)
    return None if found is None else found.text
