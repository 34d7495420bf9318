"""A folder of 100,000 entries is listed whole over SMB (the server answers a directory query
in many responses: every one is followed), with every entry's size. The sync of such a folder
through the services runs in tests/e2e/test_hostile_names.py (20,000 entries in CI)."""
from __future__ import annotations

import os

import pytest

from tests.conformance.remotes import SmbRemote

WIDE = int(os.environ.get("SCAIDRIVE_WIDE_FOLDER", "100000"))


@pytest.fixture
def smb(samba):
    remote = SmbRemote(samba)
    yield remote
    remote.cleanup()


def test_a_folder_of_100k_entries_is_listed_whole(smb):
    folder = smb.mkdir("wide")
    for i in range(WIDE):
        with open(folder / f"f{i:06d}.txt", "wb") as f:
            f.write(b"x" * (i % 7))
    listing = smb.make_source().list(None)
    assert listing.failures == []
    assert listing.complete
    sizes = {path: e.size for path, e in listing.entries.items()}
    assert len(sizes) == WIDE
    assert sizes == {f"wide/f{i:06d}.txt": i % 7 for i in range(WIDE)}
