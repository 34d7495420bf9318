"""The emulator's write side through the real clients: upload sessions with If-Match, encoded
names, cTag/eTag, deletes, and the download shaping tests use."""
import os

import httpx
import pytest
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.drives.item.items.item.create_upload_session.create_upload_session_post_request_body import (  # noqa: E501 - the module path alone is that long
    CreateUploadSessionPostRequestBody,
)
from msgraph.generated.models.drive_item_uploadable_properties import DriveItemUploadableProperties

from .helpers import CHUNK, new_library
from .model import qxh


async def test_upload_session_if_match_and_chunks(graph):
    _, drive = new_library(graph)
    folder = graph.mkdir(drive, "up")
    graph.put_file(drive, "up/doc.bin", b"v1")
    data = os.urandom(2 * CHUNK + 1000)
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        target = client.drives.by_drive_id(drive.id).items.by_drive_item_id(
            f"{folder.id}:/doc.bin:")
        body = CreateUploadSessionPostRequestBody()
        cfg = RequestConfiguration()
        cfg.headers.add("If-Match", '"{00000000-0000-0000-0000-000000000000},1"')
        with pytest.raises(APIError) as e:
            await target.create_upload_session.post(body, request_configuration=cfg)
        assert e.value.response_status_code == 412
        cfg = RequestConfiguration()
        cfg.headers.add("If-Match", graph.etag(drive, "up/doc.bin"))
        session = await target.create_upload_session.post(body, request_configuration=cfg)
        small = await client.drives.by_drive_id(drive.id).items.by_drive_item_id(
            f"{folder.id}:/small.txt:").content.put(b"tiny")
    assert small.size == 4 and small.file.hashes.quick_xor_hash == qxh(b"tiny")
    async with httpx.AsyncClient(verify=graph.ssl_context()) as http:
        statuses, final = [], None
        for off in range(0, len(data), CHUNK):
            part = data[off:off + CHUNK]
            r = await http.put(session.upload_url, content=part, headers={
                "Content-Range": f"bytes {off}-{off + len(part) - 1}/{len(data)}"})
            statuses.append(r.status_code)
            if r.status_code == 202:
                assert r.json()["nextExpectedRanges"] == [f"{off + len(part)}-"]
            final = r
    assert statuses == [202, 202, 200]
    item = final.json()
    assert item["size"] == len(data) and item["file"]["hashes"]["quickXorHash"] == qxh(data)
    assert graph.item(drive, "up/doc.bin").data == data


async def test_upload_session_rechecks_if_match_at_commit_and_rejects_bad_ranges(graph):
    _, drive = new_library(graph)
    folder = graph.mkdir(drive, "up")
    graph.put_file(drive, "up/doc.bin", b"v1")
    data = os.urandom(CHUNK + 10)
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        target = client.drives.by_drive_id(drive.id).items.by_drive_item_id(
            f"{folder.id}:/doc.bin:")
        cfg = RequestConfiguration()
        cfg.headers.add("If-Match", graph.etag(drive, "up/doc.bin"))
        session = await target.create_upload_session.post(CreateUploadSessionPostRequestBody(),
                                                          request_configuration=cfg)
    async with httpx.AsyncClient(verify=graph.ssl_context()) as http:
        r = await http.put(session.upload_url, content=data[:1000],
                           headers={"Content-Range": f"bytes 0-999/{len(data)}"})
        assert r.status_code == 400  # not a multiple of 320 KiB and not the last fragment
        r = await http.put(session.upload_url, content=data[CHUNK:],
                           headers={"Content-Range": f"bytes {CHUNK}-{len(data) - 1}/{len(data)}"})
        assert r.status_code == 416  # out of order
        r = await http.put(session.upload_url, content=data[:CHUNK],
                           headers={"Content-Range": f"bytes 0-{CHUNK - 1}/{len(data)}"})
        assert r.status_code == 202
        graph.put_file(drive, "up/doc.bin", b"someone else's edit")
        r = await http.put(session.upload_url, content=data[CHUNK:],
                           headers={"Content-Range": f"bytes {CHUNK}-{len(data) - 1}/{len(data)}"})
        assert r.status_code == 412 and r.json()["error"]["code"]
    assert graph.item(drive, "up/doc.bin").data == b"someone else's edit"


async def test_encoded_names_in_site_path_and_upload(graph):
    site = graph.add_site("contoso.sharepoint.com", "/sites/Ünïcode Site")
    drive = graph.add_library(site, "Dokumente & Co")
    root = graph.item(drive, "")
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        got = await client.sites.by_site_id("contoso.sharepoint.com:/sites/Ünïcode Site:").get()
        assert got.id == site.id
        it = await client.drives.by_drive_id(drive.id).items.by_drive_item_id(
            f"{root.id}:/a #%&+ é.txt:").content.put(b"x")
        assert it.name == "a #%&+ é.txt" and graph.item(drive, "a #%&+ é.txt").data == b"x"
        with pytest.raises(APIError) as e:
            await client.drives.by_drive_id(drive.id).items.by_drive_item_id(
                f"{root.id}:/bad|name.txt:").content.put(b"x")
        assert e.value.response_status_code == 400


async def test_ctag_follows_content_only_and_etag_every_change(graph):
    _, drive = new_library(graph)
    graph.put_file(drive, "a/doc.txt", b"v1")
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        by_path = client.drives.by_drive_id(drive.id).items.by_drive_item_id
        first = await by_path("root:/a/doc.txt:").get()  # `items/root` is the root's alias
        graph.move(drive, "a/doc.txt", "b/renamed.txt")
        moved = await by_path("root:/b/renamed.txt:").get()
        graph.put_file(drive, "b/renamed.txt", b"v2")
        edited = await by_path(f"{moved.id}").get()
    assert moved.id == first.id and moved.c_tag == first.c_tag and moved.e_tag != first.e_tag
    assert edited.c_tag != moved.c_tag and edited.e_tag != moved.e_tag


async def test_delete_by_id_and_by_path(graph):
    _, drive = new_library(graph)
    graph.put_file(drive, "d/one.txt", b"1")
    graph.put_file(drive, "d/two.txt", b"2")
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        items = client.drives.by_drive_id(drive.id).items
        cfg = RequestConfiguration()
        cfg.headers.add("If-Match", '"{00000000-0000-0000-0000-000000000000},1"')
        with pytest.raises(APIError) as e:
            await items.by_drive_item_id("root:/d/one.txt:").delete(request_configuration=cfg)
        assert e.value.response_status_code == 412 and graph.item(drive, "d/one.txt")
        cfg = RequestConfiguration()
        cfg.headers.add("If-Match", graph.etag(drive, "d/one.txt"))
        await items.by_drive_item_id("root:/d/one.txt:").delete(request_configuration=cfg)
        await items.by_drive_item_id(graph.item(drive, "d/two.txt").id).delete()
        with pytest.raises(APIError) as e:
            await items.by_drive_item_id("root:/d/one.txt:").delete()
        assert e.value.response_status_code == 404
    assert graph.item(drive, "d/one.txt") is None and graph.item(drive, "d/two.txt") is None
    assert graph.item(drive, "d") is not None


async def test_a_folders_etag_follows_its_children_and_guards_its_delete(graph):
    """A child added, renamed or removed gives the folder a new eTag; a DELETE If-Match an older
    one is a 412 and the folder stays (its subtree would go with it)."""
    _, drive = new_library(graph)
    graph.mkdir(drive, "f")
    seen = [graph.etag(drive, "f")]
    graph.put_file(drive, "f/a.txt", b"a")
    seen.append(graph.etag(drive, "f"))
    graph.move(drive, "f/a.txt", "f/b.txt")
    seen.append(graph.etag(drive, "f"))
    graph.delete(drive, "f/b.txt")
    seen.append(graph.etag(drive, "f"))
    assert len(set(seen)) == 4
    graph.put_file(drive, "f/late.txt", b"late")
    async with graph.secret_credential() as cred:
        folder = graph.graph_client(cred).drives.by_drive_id(drive.id).items \
            .by_drive_item_id("root:/f:")
        assert (await folder.get()).folder.child_count == 1
        cfg = RequestConfiguration()
        cfg.headers.add("If-Match", seen[-1])
        with pytest.raises(APIError) as e:
            await folder.delete(request_configuration=cfg)
    assert e.value.response_status_code == 412 and graph.item(drive, "f/late.txt")


async def test_download_shaping_throttles_and_corrupts(graph):
    _, drive = new_library(graph)
    data = os.urandom(1000)
    it = graph.put_file(drive, "f.bin", data)
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        item = await client.drives.by_drive_id(drive.id).items.by_drive_item_id(it.id).get()
    url = item.additional_data["@microsoft.graph.downloadUrl"]
    graph.throttle_downloads(1, retry_after_s=7)
    graph.corrupt_next_download()
    async with httpx.AsyncClient(verify=graph.ssl_context()) as http:
        r = await http.get(url)
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        r = await http.get(url)
        assert len(r.content) == len(data) and r.content != data
        assert qxh(r.content) != item.file.hashes.quick_xor_hash
        assert (await http.get(url)).content == data


async def test_conflict_behavior_fail_and_the_office_rewrite(graph):
    _, drive = new_library(graph)
    graph.put_file(drive, "taken.txt", b"theirs")
    data = os.urandom(CHUNK + 10)
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        by_path = client.drives.by_drive_id(drive.id).items.by_drive_item_id
        put = by_path("root:/taken.txt:").content.to_put_request_information(b"mine")
        put.url_template = (put.url_template.split("{?")[0]
                            + "{?%40microsoft.graph.conflictBehavior}")
        put.query_parameters["%40microsoft.graph.conflictBehavior"] = "fail"
        with pytest.raises(APIError) as e:
            await client.request_adapter.send_primitive_async(put, "bytes", None)
        assert e.value.response_status_code == 409
        body = CreateUploadSessionPostRequestBody(item=DriveItemUploadableProperties(
            additional_data={"@microsoft.graph.conflictBehavior": "fail"}))
        session = await by_path("root:/late.docx:").create_upload_session.post(body)
        graph.rewrite_office = True
        try:
            report = await by_path("root:/report.docx:").content.put(b"PK docx")
        finally:
            graph.rewrite_office = False
    assert graph.item(drive, "taken.txt").data == b"theirs"
    stored = graph.item(drive, "report.docx").data
    assert stored.startswith(b"PK docx") and stored != b"PK docx"
    assert report.size == len(stored) and report.file.hashes.quick_xor_hash == qxh(stored)
    graph.put_file(drive, "late.docx", b"created while the session was open")
    async with httpx.AsyncClient(verify=graph.ssl_context()) as http:
        r = await http.put(session.upload_url, content=data[:CHUNK],
                           headers={"Content-Range": f"bytes 0-{CHUNK - 1}/{len(data)}"})
        assert r.status_code == 202
        r = await http.put(session.upload_url, content=data[CHUNK:],
                           headers={"Content-Range": f"bytes {CHUNK}-{len(data) - 1}/{len(data)}"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "nameAlreadyExists"
    assert graph.item(drive, "late.docx").data == b"created while the session was open"


async def test_patch_renames_and_moves_with_if_match_and_never_over_a_name(graph):
    from msgraph.generated.models.drive_item import DriveItem
    from msgraph.generated.models.folder import Folder
    from msgraph.generated.models.item_reference import ItemReference

    _, drive = new_library(graph)
    graph.put_file(drive, "a/doc.txt", b"doc")
    graph.put_file(drive, "b/taken.txt", b"taken")
    before = graph.item(drive, "a/doc.txt")
    ctag = f'"c:{{{before.etag_guid}}},{before.content_version}"'
    async with graph.secret_credential() as cred:
        items = graph.graph_client(cred).drives.by_drive_id(drive.id).items
        fail = {"@microsoft.graph.conflictBehavior": "fail"}
        folder = await items.by_drive_item_id("root").children.post(
            DriveItem(name="c", folder=Folder(), additional_data=fail))
        with pytest.raises(APIError) as e:  # the default conflict behaviour: fail
            await items.by_drive_item_id("root").children.post(DriveItem(name="c", folder=Folder()))
        assert e.value.response_status_code == 409
        stale = RequestConfiguration()
        stale.headers.add("If-Match", '"{00000000-0000-0000-0000-000000000000},1"')
        move = DriveItem(name="new.txt", parent_reference=ItemReference(id=folder.id))
        with pytest.raises(APIError) as e:
            await items.by_drive_item_id(before.id).patch(move, request_configuration=stale)
        assert e.value.response_status_code == 412
        b = graph.item(drive, "b")
        with pytest.raises(APIError) as e:
            await items.by_drive_item_id(before.id).patch(
                DriveItem(name="TAKEN.txt", parent_reference=ItemReference(id=b.id)))
        assert e.value.response_status_code == 409
        current = RequestConfiguration()
        current.headers.add("If-Match", graph.etag(drive, "a/doc.txt"))
        moved = await items.by_drive_item_id(before.id).patch(move, request_configuration=current)
    assert moved.id == before.id and moved.name == "new.txt"
    assert moved.c_tag == ctag  # same content: the cTag stays, the eTag moves on
    assert graph.item(drive, "c/new.txt").data == b"doc" and graph.item(drive, "a/doc.txt") is None
    assert graph.item(drive, "b/taken.txt").data == b"taken"
