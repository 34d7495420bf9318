"""A scan's listing of a bucket (`bucket_listing.listed_objects`), against the S3 server: every
object under the prefix once, across pages, with the key, size and etag minio's own
`list_objects` gives, whatever characters the keys hold."""
from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared.config.settings import Settings
from shared.storage.bucket_listing import listed_objects
from shared.storage.s3 import Storage

BUCKET = "bucket-listing"
ODD = ["a b.txt", "plus+sign.txt", "per%cent%20.txt", "amp&lt;<>\"'.txt", "Überblick ß.txt",
       "sub/dir/deep.txt", "sub/", "emoji 📄.txt", "semi;colon?.txt"]


@pytest.fixture(scope="module")
def storage(s3):
    store = Storage(Settings(s3_endpoint=s3.endpoint, s3_access_key=SecretStr(s3.access_key),
                             s3_secret_key=SecretStr(s3.secret_key),
                             secret_key=SecretStr(Fernet.generate_key().decode())))
    store.create_bucket(BUCKET)
    for n, key in enumerate([f"many/f{i:05d}.bin" for i in range(1234)] + ODD):
        store.client.put_object(BUCKET, key, io.BytesIO(b"x" * (n % 50)), n % 50)
    store.client.put_object(BUCKET, "other/x.txt", io.BytesIO(b"y"), 1)
    return store


@pytest.mark.parametrize("prefix", [None, "many/", "sub/"])
def test_every_object_once_with_minios_key_size_and_etag(storage, prefix):
    ours = list(listed_objects(storage.client, BUCKET, prefix))
    theirs = [(o.object_name, o.size, o.etag)
              for o in storage.client.list_objects(BUCKET, prefix=prefix, recursive=True)]
    assert [tuple(o) for o in ours] == theirs
    assert len(ours) == {None: 1234 + len(ODD) + 1, "many/": 1234, "sub/": 2}[prefix]


def test_a_shares_sizes_and_etags_are_those_of_its_folders_objects(storage):
    def size(key: str) -> int:
        return (1234 + ODD.index(key)) % 50

    assert dict(storage.object_sizes(BUCKET, "sub")) == {
        "sub/dir/deep.txt": size("sub/dir/deep.txt"), "sub/": size("sub/")}
    etags = dict(storage.object_etags(BUCKET, ""))
    assert set(ODD) <= set(etags) and "other/x.txt" in etags and len(etags) == 1234 + len(ODD) + 1
    assert etags["a b.txt"] == storage.client.stat_object(BUCKET, "a b.txt").etag
