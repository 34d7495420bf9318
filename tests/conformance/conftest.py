"""Fixtures of the Source conformance suite: one `remote` per backend implementation."""
from __future__ import annotations

import pytest

from shared.sources.base import Source
from tests.conformance.remotes import SharePointRemote, SmbDfsRemote, SmbRemote


@pytest.fixture(params=["smb", "smb-dfs", "sharepoint"])
def remote(request):
    remote = {"smb": lambda: SmbRemote(request.getfixturevalue("samba")),
              "smb-dfs": lambda: SmbDfsRemote(request.getfixturevalue("samba")),
              "sharepoint": lambda: SharePointRemote(request.getfixturevalue("graph")),
              }[request.param]()
    yield remote
    remote.cleanup()


@pytest.fixture
def source_factory(remote):
    """Builds sources on the test's own folder (SMB) or library (SharePoint); keyword overrides
    (e.g. `remote.wrong_credentials`)."""
    return remote.make_source


@pytest.fixture
def source(source_factory) -> Source:
    return source_factory()


@pytest.fixture
def sp(graph):
    remote = SharePointRemote(graph)
    page_size, graph.page_size = graph.page_size, 7  # several pages: nextLinks are followed
    yield remote
    graph.page_size = page_size
    graph.throttle(0)
    graph.throttle_downloads(0)
    graph.corrupt_next_download(0)
    remote.cleanup()

