import pytest

from .server import GraphHandle


@pytest.fixture(scope="session")
def graph(tmp_path_factory):
    """A Graph + Entra ID emulator over HTTPS on loopback (see tests/graph/server.py GraphHandle)."""
    handle = GraphHandle(tmp_path_factory.mktemp("graph")).start()
    yield handle
    handle.stop()
