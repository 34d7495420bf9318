"""The families the services used to reach with the raw client, now behind typed store objects
(users, directory answers, console sessions and failed token checks, claims of long work),
against the real Redis. Each test also reads the raw keys: the layout is the one already in
use (same names, same values), so data written before keeps working."""
from __future__ import annotations

import hashlib
import json

import pytest

from shared.config.connector_model import Connector
from shared.config.identity_mapping import User
from shared.contracts import Owner
from shared.store.upload_records import OpenUpload
from shared.sync.model import IndexRecord, SourceEntry

SID = "S-1-5-21-1-2-3-1001"


async def test_users_live_in_one_hash_of_json(state):
    alice = User(id="u-alice", email="alice@corp.local", display_name="Alice")
    assert await state.users.users() == [] and await state.users.get("u-alice") is None
    await state.users.put([alice])
    await state.users.put([])  # nothing to import: nothing written
    assert await state.users.users() == [alice]
    assert await state.users.get("u-alice") == alice
    assert await state.r.hgetall(f"{state.ns}:users") == {"u-alice": alice.model_dump_json()}


async def test_each_import_of_users_raises_their_version_read_with_the_connector(state):
    """The identity service reads this version with the connector at each message's start:
    the users are read again when it moved (an import minutes, or moments, before)."""
    c = Connector(name="owners", target_share="owners", schedule="1h")
    await state.save_connector(c)
    assert (await state.users.version(), await state.connector_for_owners(c.id)) == \
        (0, (c, False, 0))
    await state.users.put([User(id="u-alice", email="alice@corp.local")])
    await state.users.put([])  # nothing imported: the users did not change
    await state.users.put([User(id="u-bob", email="bob@corp.local")])
    await state.flag_status(c.id, "paused")
    assert await state.users.version() == 2
    assert await state.connector_for_owners(c.id) == (c, True, 2)
    assert await state.connector_for_owners("gone") == (None, False, 2)
    # The same directory imported again (a nightly import) changes nothing, raises nothing.
    assert await state.users.put([User(id="u-bob", email="bob@corp.local")]) == 0
    assert await state.users.version() == 2
    assert await state.users.put([User(id="u-bob", email="bob@corp.local", display_name="Bob"),
                                  User(id="u-alice", email="alice@corp.local")]) == 1
    assert await state.users.version() == 3


async def test_a_connectors_files_are_labelled_under_a_users_version(state):
    """The version a connector's files were last all labelled under, read with the users'
    version at a scan's start: the scan relabels the system owner's files when they differ."""
    assert await state.users_labelled("c1") == (0, None)  # never scanned
    await state.mark_users_labelled("c1", 0)
    await state.users.put([User(id="u-alice", email="alice@corp.local")])
    assert await state.users_labelled("c1") == (1, 0)
    await state.mark_users_labelled("c1", 1)
    assert await state.users_labelled("c1") == (1, 1)


async def test_directory_answers_fresh_per_version_and_last_known(state):
    owners = state.owners
    alice = Owner(user_id="u-alice", source_principal=SID, method="email")
    assert await owners.cached("c1", 1, 0, SID) is None
    assert await owners.last_known("c1", SID) is None
    await owners.remember("c1", 1, 0, SID, alice, 60)
    assert await owners.cached("c1", 1, 0, SID) == alice
    assert await owners.cached("c1", 2, 0, SID) is None  # a new mapping version asks again
    assert await owners.cached("c1", 1, 1, SID) is None  # so do users imported since
    assert await owners.last_known("c1", SID) == alice
    fresh, last = f"{state.ns}:idcache:c1:1:0:{SID}", f"{state.ns}:idlast:c1:{SID}"
    assert await state.r.get(fresh) == await state.r.get(last) == alice.model_dump_json()
    assert 0 < await state.r.ttl(fresh) <= 60 and await state.r.ttl(last) == -1


async def test_degraded_owners_are_counted_on_the_run(state):
    await state.begin_run("c1", "r1", "manual")
    await state.add_to_run("c1", "owners_degraded")
    await state.add_to_run("c1", "owners_degraded", 2)
    assert (await state.run("c1"))["owners_degraded"] == "3"


async def test_sessions_are_kept_under_a_hash_of_their_id(state):
    access = state.api_access
    await access.open_session("cookie-id", {"name": "ann", "role": "readonly"}, 60)
    assert await access.session("cookie-id") == {"name": "ann", "role": "readonly"}
    assert await access.session("other") is None
    key = f"{state.ns}:session:{hashlib.sha256(b'cookie-id').hexdigest()}"
    assert json.loads(await state.r.get(key)) == {"name": "ann", "role": "readonly"}
    assert 0 < await state.r.ttl(key) <= 60
    assert not [k async for k in state.r.scan_iter(f"{state.ns}:*cookie-id*")]
    await access.close_session("cookie-id")
    assert await access.session("cookie-id") is None and not await state.r.exists(key)


async def test_failed_checks_count_in_a_fixed_window(state):
    access = state.api_access
    assert await access.failed_checks("10.0.0.9") is None
    assert await access.window_left_s("10.0.0.9") < 0  # no window open
    assert (await access.count_failed_check("10.0.0.9", 300))[0] == 1
    await state.r.expire(f"{state.ns}:authfail:10.0.0.9", 100)  # time passes
    count, ttl = await access.count_failed_check("10.0.0.9", 300)
    assert count == 2 and 0 < ttl <= 100  # the window is not extended
    assert await access.failed_checks("10.0.0.9") == 2
    assert 0 < await access.window_left_s("10.0.0.9") <= 100
    assert await state.r.get(f"{state.ns}:authfail:10.0.0.9") == "2"


@pytest.mark.single_layout
async def test_claim_records_keep_their_three_keys(state):
    records = state.claim_records
    token = await records.take("c1:r:1", {"body": "{}", "attempts": 0}, 30)
    assert json.loads(await state.r.hget(f"{state.ns}:claims", "c1:r:1")) == {
        "body": "{}", "attempts": 0}
    assert await state.r.hget(f"{state.ns}:claims:token", "c1:r:1") == token
    assert await state.r.zscore(f"{state.ns}:claims:due", "c1:r:1") is not None
    assert await records.renew("c1:r:1", token, 30)
    assert not await records.renew("c1:r:1", "not-the-holder", 30)
    assert await records.take_over_expired(30) == []  # not due yet


@pytest.mark.single_layout
async def test_index_values_are_packed_and_their_labels_kept_apart(state):
    """{ns}:index:{cid} holds path -> packed record (shared/store/index_codec.py); the owner
    labels it names live once in {ns}:labels:{cid} (id -> label, "=" + label -> id)."""
    alice = IndexRecord(size=48213, mtime_ns=1718000000123456700, file_id="844424930132033",
                        owner="u-alice", principal="S-1-5-21-1004336348-1177238915-682003330-1104",
                        etag="d41d8cd98f00b204e9800998ecf8427e", synced_at=1718000000.5,
                        method="table")
    system = IndexRecord(size=0, mtime_ns=1, file_id=None, owner="system", principal=None,
                         etag=None, synced_at=1.0, content_tag="QXor=")
    await state.put_index("c1", "a/report.docx", alice)
    await state.put_index("c1", "b.txt", system)
    await state.put_index("c1", "c.txt", alice)
    # Binary (binary_records): marker; kinds (file id 1: a number, etag 1: an md5; content tag
    # 2: text); lengths (size 2 bytes, mtime 8: ns; seconds would read 8 + n); [lengths of the
    # change time 0 and the file id 7]; size; mtime; file id; md5; synced_at; tag; label id.
    alice_value = bytes.fromhex(
        "01 05 28 07" "bc55" "17d78fe5d37accbc" "03000000000041"
        "d41d8cd98f00b204e9800998ecf8427e" "41d999a660200000" "01")
    system_value = bytes.fromhex("01 20 01" "" "01" "3ff0000000000000" "05" "51586f723d" "02")
    assert await state.r.hgetall(f"{state.ns}:index:c1") == {
        path: value.decode("utf-8", "surrogateescape") for path, value in (
            ("a/report.docx", alice_value), ("b.txt", system_value), ("c.txt", alice_value))}
    label_alice = '["u-alice","S-1-5-21-1004336348-1177238915-682003330-1104","table",null,1]'
    label_system = '["system",null,"system_owner",null,1]'
    assert await state.r.hgetall(f"{state.ns}:labels:c1") == {
        "1": label_alice, "=" + label_alice: "1", "2": label_system, "=" + label_system: "2"}
    await state.delete_connector("c1")  # the labels stay: another process may hold their ids
    assert await state.r.exists(f"{state.ns}:index:c1", f"{state.ns}:labels:c1") == 1


async def test_an_upload_left_open_is_read_back_until_forgotten_or_its_connector_deleted(state):
    """What the next worker needs to go on with a killed worker's upload (upload_records)."""
    version = SourceEntry("dir/big.bin", 50 << 20, 1_764_000_000_123_456_789, "4242", None,
                          1_764_000_000_223_456_789)
    upload = OpenUpload("prefix/dir/big.bin", "upload-1", 8 << 20, version,
                        {"source-path": "dir/big.bin", "scaidrive-owner": "alice"})
    assert await state.uploads.get("c1", "dir/big.bin") is None
    await state.uploads.put("c1", "dir/big.bin", upload)
    assert await state.uploads.get("c1", "dir/big.bin") == upload
    assert await state.uploads.get("c2", "dir/big.bin") is None  # per connector
    await state.uploads.forget("c1", "dir/big.bin")
    assert await state.uploads.get("c1", "dir/big.bin") is None
    await state.uploads.put("c1", "dir/big.bin", upload)
    await state.delete_connector("c1")
    assert await state.uploads.get("c1", "dir/big.bin") is None


def test_an_upload_goes_on_only_with_the_same_bytes_to_the_same_object():
    version = SourceEntry("big.bin", 100, 5, "7", None, 6)
    meta = {"scaidrive-owner": "alice"}
    upload = OpenUpload("big.bin", "u", 8, version, meta)
    assert upload.goes_on("big.bin", 8, version, dict(meta))
    for key, part, other, metadata in [
            ("other.bin", 8, version, meta),  # another object
            ("big.bin", 16, version, meta),  # parts cut another way
            ("big.bin", 8, SourceEntry("big.bin", 100, 5, "7", None, 9), meta),  # changed
            ("big.bin", 8, SourceEntry("big.bin", 100, 5, "8", None, 6), meta),  # replaced
            ("big.bin", 8, version, {"scaidrive-owner": "bob"})]:  # another owner
        assert not upload.goes_on(key, part, other, metadata)
