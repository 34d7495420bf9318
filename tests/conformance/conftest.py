"""Fixtures of the Source conformance suite: one `remote` per backend implementation."""
from __future__ import annotations

import pytest

from shared.sources.base import Source
from tests.conformance.remotes import SmbRemote


@pytest.fixture(params=["smb"])
def remote(request):
    remote = {"smb": lambda: SmbRemote(request.getfixturevalue("samba"))}[request.param]()
    yield remote
    remote.cleanup()


@pytest.fixture
def source_factory(remote):
    """Builds sources on the test's own folder; keyword overrides (e.g. a wrong password)."""
    return remote.make_source


@pytest.fixture
def source(source_factory) -> Source:
    return source_factory()
