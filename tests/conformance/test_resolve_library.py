"""`resolve_library`: what the admin API checks when a SharePoint connector is saved."""
from __future__ import annotations

import uuid

import pytest

from shared import errors
from shared.sources.sharepoint.graph import GraphEndpoint, resolve_library
from tests.conformance.remotes import SharePointRemote


@pytest.fixture
def sp(graph):
    remote = SharePointRemote(graph)
    yield remote
    remote.cleanup()


def resolve(sp, site_url: str, library: str, **creds):
    return resolve_library(sp.endpoint(), sp.credentials(**creds), site_url, library)


def test_finds_the_library_by_name_in_any_case_and_url_form(graph, sp):
    site = graph.add_site("contoso.sharepoint.com", f"/sites/Finance Team {uuid.uuid4().hex[:6]}")
    graph.add_library(site, "Documents")
    contracts = graph.add_library(site, "Contrats 2024")
    encoded = site.web_url.replace(" ", "%20")

    assert resolve(sp, site.web_url, "contrats 2024") == (site.id, contracts.id)
    assert resolve(sp, encoded + "/", "CONTRATS 2024") == (site.id, contracts.id)
    pasted = f"{encoded}/Contrats%202024/Forms/AllItems.aspx"  # a library page's URL, whole
    assert resolve(sp, pasted, "Contrats 2024") == (site.id, contracts.id)
    assert resolve(sp, site.web_url, "Documents")[1] == site.drives[0].id


def test_a_root_site_is_found_by_its_host_alone(graph, sp):
    host = f"fabrikam{uuid.uuid4().hex[:6]}.sharepoint.com"
    site = graph.add_site(host, "/")
    drive = graph.add_library(site, "Documents")

    assert resolve(sp, f"https://{host}", "documents") == (site.id, drive.id)


def test_unknown_site_or_library_names_the_field(graph, sp):
    with pytest.raises(errors.ConfigInvalid) as info:
        resolve(sp, sp.site.web_url + "-nope", "Documents")
    assert info.value.field == "site_url"

    graph.add_library(sp.site, "Archive")
    with pytest.raises(errors.ConfigInvalid) as info:
        resolve(sp, sp.site.web_url, "Shared Stuff")
    assert info.value.field == "library"
    assert "Documents" in str(info.value) and "Archive" in str(info.value)

    with pytest.raises(errors.ConfigInvalid) as info:
        resolve(sp, "http://contoso.sharepoint.com/sites/x", "Documents")
    assert info.value.field == "site_url"


def test_refused_credentials_are_auth_failed_without_the_secret(graph, sp):
    secret = "wrong-" + uuid.uuid4().hex
    with pytest.raises(errors.AuthFailed) as info:
        resolve(sp, sp.site.web_url, "Documents", client_secret=secret)
    assert "AADSTS7000215" in str(info.value) and secret not in str(info.value)

    with pytest.raises(errors.AuthFailed) as info:
        resolve(sp, sp.site.web_url, "Documents", tenant_id=str(uuid.uuid4()))
    assert "AADSTS90002" in str(info.value)
    assert secret not in repr(sp.credentials(client_secret=secret))


def test_unreachable_graph_is_transient(graph, sp):
    dead = "https://127.0.0.1:9"  # discard port: nothing listens
    endpoint = GraphEndpoint(authority=dead, graph_base=dead + "/v1.0", ca_bundle=graph.ca_pem)

    with pytest.raises(errors.Transient):
        resolve_library(endpoint, sp.credentials(), sp.site.web_url, "Documents")
