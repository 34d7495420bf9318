"""A two-way run over a tree larger than the scan's chunks (2.1 x SCAN_CHUNK files: three chunks of
the listing, several pages of ScaiDrive's etags), with changes spread across all of them on both
sides: files renamed in ScaiDrive and at the share, deleted at the share, edited and created in
ScaiDrive. The streamed decision pairs each rename across chunks (moved, no bytes sent),
deletes, pushes, and leaves both sides identical; the next run has nothing to do."""
from __future__ import annotations

import os

import pytest

from tests.e2e.helpers import bucket_tree, disk_tree
from tests.e2e.test_two_way import put, two_way
from tests.e2e.test_two_way_renames import progress, rename_in_scaidrive
from tests.fixtures.stack import SCAN_CHUNK, sync_and_wait

pytestmark = pytest.mark.e2e
FILES = 21 * SCAN_CHUNK // 10
EVERY = SCAN_CHUNK // 4  # a change every quarter chunk


def name(i: int) -> str:
    return f"d{i // 10:03d}/f{i:04d}.txt"


def test_changes_spread_over_every_chunk_are_decided_together(stack, samba, s3):
    api, root = stack.api(), samba.path("tw-streamed")
    cid = two_way(api, samba, "tw-streamed", {name(i): f"file {i}".encode()
                                               for i in range(FILES)})
    renamed_there, renamed_here = range(0, FILES, EVERY), range(7, FILES, EVERY)  # every chunk
    deleted_here = range(3, FILES, SCAN_CHUNK // 10)  # none renamed or edited
    for i in renamed_there:
        rename_in_scaidrive(s3, "tw-streamed", name(i), f"renamed/f{i:04d}.txt")
    (root / "moved_here").mkdir()
    for i in renamed_here:
        os.rename(root / name(i), root / f"moved_here/f{i:04d}.txt")
    for i in deleted_here:
        (root / name(i)).unlink()
    pushed = {name(i): f"edited {i} in ScaiDrive".encode() for i in range(5, FILES, EVERY)}
    pushed |= {f"new/n{k}.txt": f"new {k}".encode() for k in range(5)}
    for path, data in pushed.items():
        put(s3, "tw-streamed", path, data)

    view = sync_and_wait(api, cid)
    assert view["status"]["run"]["outcome"] == "success", api.get(
        f"/connectors/{cid}/failures").text
    assert progress(view) == {"files_moved": len(renamed_there) + len(renamed_here),
                              "files_deleted": len(deleted_here),
                              "files_transferred": len(pushed),
                              "bytes_transferred": sum(map(len, pushed.values()))}  # no move's
    assert disk_tree(root) == bucket_tree(s3.client(), "tw-streamed")
    n = SCAN_CHUNK  # in the second chunk
    assert (root / f"renamed/f{n:04d}.txt").read_bytes() == f"file {n}".encode()
    assert (root / name(n + 5)).read_bytes() == f"edited {n + 5} in ScaiDrive".encode()
    assert progress(sync_and_wait(api, cid)) == {}
