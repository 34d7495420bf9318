"""The Graph emulator driven only through the real clients: azure-identity credentials, msgraph-sdk
wired as in the facts file, and plain httpx for download URLs and upload-session PUTs."""
import asyncio
import base64
import os
import time
import uuid

import httpx
import pytest
import quickxorhash
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError

from .helpers import SCOPE, delta_all, new_library, paths_from_delta
from .model import qxh


async def test_tokens_with_secret_and_certificate(graph):
    site, _ = new_library(graph)
    for make in (graph.secret_credential, graph.certificate_credential):
        async with make() as cred:
            tok = await cred.get_token(SCOPE)
            assert tok.expires_on > time.time() + 600
            client = graph.graph_client(cred)
            got = await client.sites.by_site_id(site.id).get()
            assert got.id == site.id
    async with graph.secret_credential(secret="wrong") as cred:
        with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
            await cred.get_token(SCOPE)


async def test_graph_checks_bearer_and_expiry(graph):
    site, _ = new_library(graph)
    url = f"{graph.graph_base}/sites/{site.id}"
    async with httpx.AsyncClient(verify=graph.ssl_context()) as http:
        r = await http.get(url)
        assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
        r = await http.get(url, headers={"Authorization": "Bearer forged"})
        assert r.status_code == 401
        graph.set_token_lifetime(2)
        try:
            async with graph.secret_credential() as cred:
                tok = (await cred.get_token(SCOPE)).token
        finally:
            graph.set_token_lifetime(3600)
        r = await http.get(url, headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 200
        await asyncio.sleep(2.2)
        r = await http.get(url, headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 401


async def test_site_by_url_then_drive_by_library_name(graph):
    site = graph.add_site("contoso.sharepoint.com", "/sites/Finance Team")
    graph.add_library(site, "Documents")
    wanted = graph.add_library(site, "Contrats 2024")
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        got = await client.sites.by_site_id("contoso.sharepoint.com:/sites/Finance Team:").get()
        assert got.id == site.id and got.id.count(",") == 2
        drives = await client.sites.by_site_id(got.id).drives.get()
        by_name = {d.name: d.id for d in drives.value}
        assert by_name == {"Documents": site.drives[0].id, "Contrats 2024": wanted.id}
        with pytest.raises(APIError) as e:
            await client.sites.by_site_id("contoso.sharepoint.com:/sites/nope:").get()
        assert e.value.response_status_code == 404


async def test_full_delta_pages_and_paths(graph):
    _, drive = new_library(graph)
    expected = set()
    for a in range(4):
        for b in range(3):
            for f in range(10):
                p = f"dir{a}/sub {b}/deep/file-{f}.txt"
                graph.put_file(drive, p, f"{a}{b}{f}".encode(),
                               created_by_email="alice@contoso.com")
                expected.add(p)
    expected |= ({f"dir{a}" for a in range(4)}
                 | {f"dir{a}/sub {b}" for a in range(4) for b in range(3)}
                 | {f"dir{a}/sub {b}/deep" for a in range(4) for b in range(3)})
    before = graph.counts().get("delta", 0)
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        items, pages, _ = await delta_all(client, drive.id)
    assert pages == -(-(len(expected) + 1) // graph.page_size) and pages >= 3
    assert graph.counts()["delta"] - before == pages
    tree = paths_from_delta(items)
    assert set(tree) == expected
    f = tree["dir2/sub 1/deep/file-7.txt"]
    assert f.size == 3 and f.file.hashes.quick_xor_hash == qxh(b"217")
    assert f.created_by.user.additional_data["email"] == "alice@contoso.com"
    assert "@microsoft.graph.downloadUrl" in f.additional_data
    assert tree["dir2/sub 1"].folder.child_count == 1


async def test_incremental_delta_returns_exactly_the_changes(graph):
    _, drive = new_library(graph)
    for p in ("a/keep.txt", "a/modify.txt", "a/rename.txt", "b/delete.txt", "c/x.txt"):
        graph.put_file(drive, p, p.encode())
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        items, _, link = await delta_all(client, drive.id)
        old = {i.id: i for i in items}
        again, _, link2 = await delta_all(client, drive.id, link)
        assert again == []
        new = graph.put_file(drive, "c/new.txt", b"new")
        mod = graph.put_file(drive, "a/modify.txt", b"modified!")
        moved = graph.move(drive, "a/rename.txt", "c/renamed.txt")
        gone = graph.item(drive, "b/delete.txt")
        graph.delete(drive, "b/delete.txt")
        changes, _, _ = await delta_all(client, drive.id, link2)
    by_id = {i.id: i for i in changes}
    assert set(by_id) == {new.id, mod.id, moved.id, gone.id}
    assert by_id[new.id].name == "new.txt" and by_id[new.id].deleted is None
    assert by_id[mod.id].c_tag != old[mod.id].c_tag and by_id[mod.id].size == 9
    c_folder = graph.item(drive, "c")
    assert (by_id[moved.id].name == "renamed.txt"
            and by_id[moved.id].parent_reference.id == c_folder.id)
    assert by_id[gone.id].deleted is not None


async def test_delta_url_forms(graph):
    _, drive = new_library(graph)
    graph.put_file(drive, "x/y.txt", b"y")
    async with graph.secret_credential() as cred:
        tok = (await cred.get_token(SCOPE)).token
        client = graph.graph_client(cred)
        _, _, link = await delta_all(client, drive.id)
        token = link.split("token=")[1]
        graph.put_file(drive, "x/z.txt", b"z")
        r = await (client.drives.by_drive_id(drive.id).items.by_drive_item_id("root")
                   .delta_with_token(token).get())
        assert [i.name for i in r.value] == ["z.txt"]
    async with httpx.AsyncClient(verify=graph.ssl_context(),
                                 headers={"Authorization": f"Bearer {tok}"}) as http:
        r = await http.get(f"{graph.graph_base}/drives/{drive.id}/root/delta",
                           params={"token": token})
        assert [i["name"] for i in r.json()["value"]] == ["z.txt"]
        r = await http.get(f"{graph.graph_base}/drives/{drive.id}/root/delta")
        assert {i.get("name") for i in r.json()["value"]} == {"root", "x", "y.txt", "z.txt"}
        assert all("path" not in i["parentReference"] for i in r.json()["value"])
        r = await http.get(f"{graph.graph_base}/drives/{drive.id}/bogus")
        assert r.status_code in (400, 404) and set(r.json()["error"]) >= {"code", "message"}
        r = await http.get(f"{graph.authority}/nothing/here")
        assert r.status_code == 404 and r.json()["error"]["code"]


async def test_download_url_streamed_and_hash_matches(graph):
    _, drive = new_library(graph)
    data = os.urandom(3 * 1024 * 1024 + 17)
    it = graph.put_file(drive, "big/blob.bin", data)
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        item = await client.drives.by_drive_id(drive.id).items.by_drive_item_id(it.id).get()
        tok = (await cred.get_token(SCOPE)).token
    url = item.additional_data["@microsoft.graph.downloadUrl"]
    h = quickxorhash.quickxorhash()
    async with httpx.AsyncClient(verify=graph.ssl_context()) as http:
        async with http.stream("GET", url) as r:
            assert r.status_code == 200 and "authorization" not in r.request.headers
            async for chunk in r.aiter_bytes():
                h.update(chunk)
        assert base64.b64encode(h.digest()).decode() == item.file.hashes.quick_xor_hash == qxh(data)
        r = await http.get(url, headers={"Range": "bytes=100-199"})
        assert r.status_code == 206 and r.content == data[100:200]
        assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
        r = await http.get(f"{graph.graph_base}/drives/{drive.id}/items/{it.id}/content",
                           headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 302 and "tempauth=" in r.headers["location"]
        r = await http.get(url.split("?")[0] + "?tempauth=forged")
        assert r.status_code == 401


async def test_throttled_request_is_retried_by_sdk(graph):
    site, _ = new_library(graph)
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        await client.sites.by_site_id(site.id).get()
        before = graph.counts().get("throttled", 0)
        graph.throttle(2, retry_after_s=1)
        t0 = time.monotonic()
        got = await client.sites.by_site_id(site.id).get()
        assert got.id == site.id
        assert time.monotonic() - t0 >= 2
        assert graph.counts()["throttled"] - before == 2


async def test_revoked_secret_fails_with_aadsts7000215(graph):
    old = graph.client_secret
    graph.revoke_secret()
    try:
        async with graph.secret_credential(secret=old) as cred:
            with pytest.raises(ClientAuthenticationError) as e:
                await cred.get_token(SCOPE)
            assert "AADSTS7000215" in str(e.value)
    finally:
        graph.restore_secret("rotated-" + uuid.uuid4().hex)
    async with graph.secret_credential(secret=old) as cred:
        with pytest.raises(ClientAuthenticationError):
            await cred.get_token(SCOPE)
    async with graph.secret_credential() as cred:
        assert (await cred.get_token(SCOPE)).token


async def test_expired_delta_token_gives_410(graph):
    _, drive = new_library(graph)
    graph.put_file(drive, "f.txt", b"f")
    async with graph.secret_credential() as cred:
        client = graph.graph_client(cred)
        _, _, link = await delta_all(client, drive.id)
        graph.expire_delta_tokens()
        builder = client.drives.by_drive_id(drive.id).items.by_drive_item_id("root").delta
        with pytest.raises(APIError) as e:
            await builder.with_url(link).get()
        assert e.value.response_status_code == 410
        assert e.value.error.code == "resyncRequired"
        items, _, _ = await delta_all(client, drive.id)  # a full resync works
        assert {i.name for i in items} == {"root", "f.txt"}


def test_sync_credentials_use_openid_configuration(graph):
    from azure.identity import CertificateCredential, ClientSecretCredential
    before = graph.counts().get("openid", 0)
    common = {"authority": graph.authority, "disable_instance_discovery": True,
              "connection_verify": graph.ca_pem}
    assert ClientSecretCredential(graph.tenant_id, graph.client_id, graph.client_secret,
                                  **common).get_token(SCOPE)
    assert CertificateCredential(graph.tenant_id, graph.client_id, certificate_path=graph.cert_path,
                                 **common).get_token(SCOPE)
    assert graph.counts()["openid"] > before


async def test_children_pages_select_and_expiring_download_urls(graph):
    """A folder's children by path or id, 200 a page (here 3) with nextLinks that keep the
    query; `$select` names what comes back, the download URL included only when named; the
    URLs handed out can be made to fail as an expired (401) or revoked (403) one does."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.drives.item.items.item.children.children_request_builder import (
        ChildrenRequestBuilder,
    )
    _, drive = new_library(graph)
    for i in range(7):
        graph.put_file(drive, f"Team Docs/f{i}.txt", f"file {i}".encode() * (i + 1))
    graph.mkdir(drive, "Team Docs/sub")
    page_size, graph.children_page_size = graph.children_page_size, 3
    select = ["id", "name", "size", "file", "@microsoft.graph.downloadUrl"]
    try:
        async with graph.secret_credential() as cred:
            client = graph.graph_client(cred)
            folder = client.drives.by_drive_id(drive.id).items.by_drive_item_id(
                "root:/Team Docs:").children
            config = RequestConfiguration(query_parameters=ChildrenRequestBuilder.
                                          ChildrenRequestBuilderGetQueryParameters(select=select))
            page = await folder.get(config)
            items, pages = list(page.value), 1
            while page.odata_next_link:
                assert "select" in page.odata_next_link
                page = await folder.with_url(page.odata_next_link).get()
                items += page.value
                pages += 1
            plain = await client.drives.by_drive_id(drive.id).items.by_drive_item_id(
                graph.item(drive, "Team Docs").id).children.get()
    finally:
        graph.children_page_size = page_size
    assert pages == 3 and [i.name for i in items] == [*(f"f{i}.txt" for i in range(7)), "sub"]
    files = [i for i in items if i.file is not None]
    assert all(i.e_tag is None and i.last_modified_date_time is None for i in items)
    urls = [i.additional_data["@microsoft.graph.downloadUrl"] for i in files]
    assert len(plain.value) == 3 and plain.value[0].e_tag  # no $select: everything
    async with httpx.AsyncClient(verify=graph.ssl_context()) as http:
        assert (await http.get(urls[2])).content == b"file 2" * 3
        graph.expire_download_urls(403, after=1)
        assert (await http.get(urls[3])).status_code == 200  # the last one served
        assert (await http.get(urls[4])).status_code == 403
        graph.expire_download_urls(401)
        assert (await http.get(urls[5])).status_code == 403  # already dead
