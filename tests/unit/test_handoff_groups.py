"""Which of a batch's files a job thread moves in a group (`batches.in_groups`): only uploads
that need nothing between the event loop and the bytes but the quota check. A file sent to a
group that needs more (a two-way check of ScaiDrive's copy, a transfer slot, a sync window, a
multipart upload a worker left, a move's copy, a folder) would skip that step."""
from __future__ import annotations

from typing import Any

import pytest

from services.transfer.batches import in_groups
from shared.config.connector_model import Connector
from shared.contracts import ChangeKind, FileVersion, Transfer

PART = 5 * 1024 * 1024


def connector(**kw: Any) -> Connector:
    return Connector(id="c1", name="c1", target_share="share-one", schedule="1h", **kw)


def transfer(kind: ChangeKind = ChangeKind.CREATED, path: str = "a/b.txt", size: int | None = 10,
             **kw: Any) -> Transfer:
    version = None if size is None else FileVersion(size=size, mtime_ns=1)
    return Transfer(job_id="j1", kind=kind, path=path, version=version, **kw)


@pytest.mark.parametrize("x", [transfer(), transfer(ChangeKind.MODIFIED), transfer(size=PART),
                               transfer(size=0)])
def test_small_one_way_uploads_go_in_groups(x):
    assert in_groups(connector(), x, PART)
    assert in_groups(connector(bandwidth_limit="1M"), x, PART)  # paced inside the thread


@pytest.mark.parametrize("c", [
    connector(sync_mode="two_way"),  # ScaiDrive's copy checked first, a conditional PUT
    connector(max_parallel_transfers=2),  # a transfer slot held in Redis per file
    connector(sync_windows={"timezone": "UTC", "windows": ["00:00-24:00"]}),
])
def test_connectors_whose_files_need_more_send_each_alone(c):
    assert not in_groups(c, transfer(), PART)


@pytest.mark.parametrize("x", [
    transfer(size=PART + 1),  # multipart: a worker's leftover upload is looked up first
    transfer(size=None),  # size unknown: it may be large
    transfer(ChangeKind.MOVED, from_path="old.txt"),
    transfer(ChangeKind.DELETED, size=None),
    transfer(ChangeKind.RECHECKED),  # compared with the bucket's bytes first
    transfer(ChangeKind.REPAIRED),
    transfer(ChangeKind.RELABELED),
    transfer(path="a/folder/"),
])
def test_other_work_goes_alone(x):
    assert not in_groups(connector(), x, PART)
