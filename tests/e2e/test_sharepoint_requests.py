"""What a SharePoint sync costs in Graph API requests, counted by the emulator: besides the
content downloads, an initial sync must cost at most a tenth of a request per file (the listing's
delta pages, the transfer workers' folder listings for download URLs, the library's lookup when
the connector is saved), and download URLs that die mid-run must not cost a file."""
from __future__ import annotations

import urllib.parse

import pytest

from tests.e2e.helpers import bucket_tree
from tests.e2e.sharepoint_helpers import library_tree, new_site, new_sp_connector
from tests.e2e.test_sharepoint import _assert_nowhere
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
OWNERS = ("alice@contoso.com", "bob@contoso.com", "carol@contoso.com")


def _library(graph, folders: int, per_folder: int, at_root: int = 0):
    site = new_site(graph)
    drive = graph.add_library(site, "Documents")
    paths = [f"Team {f}/Sub/doc-{i:03d}.txt" if f % 2 else f"Team {f}/doc-{i:03d}.txt"
             for f in range(folders) for i in range(per_folder)]
    paths += [f"readme-{i}.txt" for i in range(at_root)]
    for n, path in enumerate(paths):
        graph.put_file(drive, path, f"{path}\n".encode() * (n % 7 + 1),
                       created_by_email=OWNERS[n % len(OWNERS)])
    return site, drive, paths


def _used(graph, before: tuple[dict, dict]) -> tuple[dict, dict]:
    """Requests by host kind and Graph requests by route since `before`."""
    kinds, routes = graph.request_counts(), graph.counts()
    return ({k: v - before[0].get(k, 0) for k, v in kinds.items()},
            {k: v - before[1].get(k, 0) for k, v in routes.items() if v - before[1].get(k, 0)})


def test_initial_sync_costs_a_tenth_of_a_graph_request_per_file(stack, graph, s3):
    site, drive, paths = _library(graph, folders=6, per_folder=40, at_root=10)
    api = stack.api()
    before = graph.request_counts(), graph.counts()

    cid = new_sp_connector(api, graph, site, "Documents", "sp-requests")["id"]
    view = wait_run(api, cid)

    kinds, routes = _used(graph, before)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text
    assert progress["files_transferred"] == len(paths) == 250
    assert bucket_tree(s3.client(), "sp-requests") == library_tree(graph, drive)
    per_file = kinds["graph"] / len(paths)
    print(f"\n{len(paths)} files: {kinds['graph']} Graph API requests ({per_file:.3f} a file: "
          f"{routes}), {kinds['download']} downloads, {kinds['token']} token requests")
    assert kinds["download"] == len(paths)  # each file's bytes once
    assert per_file <= 0.1, routes
    # Owners come from the delta listing and download URLs from folder listings: no item
    # request per file (a retried download may cost one).
    assert routes.get("item", 0) <= 2, routes
    meta = s3.client().stat_object("sp-requests", paths[1]).metadata
    assert urllib.parse.unquote(meta["x-amz-meta-source-owner"]) == OWNERS[1]
    _assert_nowhere(stack, "tempauth=")  # download URLs: in no log (DEBUG) and no Redis value


def test_download_urls_dying_mid_run_cost_no_file(stack, graph, s3):
    """After 10 downloads every URL handed out so far answers 401 (expired): the listed ones
    the workers still hold (the rest of the first folder, at least) fall back to fresh item
    requests; every file arrives as listed."""
    site, drive, paths = _library(graph, folders=3, per_folder=40)
    api = stack.api()
    before = graph.request_counts(), graph.counts()
    graph.expire_download_urls(401, after=10)
    try:
        cid = new_sp_connector(api, graph, site, "Documents", "sp-urls-die")["id"]
        view = wait_run(api, cid)
    finally:
        graph.emu.expire_downloads_after = None

    kinds, routes = _used(graph, before)
    progress = view["status"]["progress"]
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text
    assert progress["files_transferred"] == len(paths) and progress["files_errored"] == 0
    assert bucket_tree(s3.client(), "sp-urls-die") == library_tree(graph, drive)
    assert routes.get("item", 0) >= 30, routes  # the dead listed URLs were replaced
    assert kinds["download"] > len(paths)  # those that failed, then their fresh ones
    print(f"\nURLs dead after 10 downloads: {routes}")


def test_objects_lost_from_the_bucket_come_back_with_their_owners_from_the_index(
        stack, graph, s3):
    """Once the index vouches for a library's files, a run lists them from it (the position
    leaves them out); objects lost from the bucket are sent again labelled with the owner their
    record names, without a Graph request per file to ask it."""
    site, drive, paths = _library(graph, folders=2, per_folder=30)
    api = stack.api()
    cid = new_sp_connector(api, graph, site, "Documents", "sp-repair")["id"]
    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    assert sync_and_wait(api, cid)["status"]["progress"]["files_transferred"] == 0
    lost = paths[:30]
    for path in lost:
        s3.client().remove_object("sp-repair", path)
    before = graph.request_counts(), graph.counts()

    view = sync_and_wait(api, cid)

    kinds, routes = _used(graph, before)
    assert view["status"]["progress"]["files_transferred"] == len(lost), view["status"]
    assert bucket_tree(s3.client(), "sp-repair") == library_tree(graph, drive)
    for n in (0, 1, 2):
        meta = s3.client().stat_object("sp-repair", lost[n]).metadata
        assert urllib.parse.unquote(meta["x-amz-meta-source-owner"]) == OWNERS[n]
    assert kinds["download"] == len(lost)
    assert routes.get("item", 0) <= 2, routes  # not one a file
