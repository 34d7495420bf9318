"""The SMB source's connection cache (shared/sources/smb/sessions.py): the threads that ask for
a server while a logon to it is in flight share that logon; a failure reaches each of them as
its own error (each file's failure names its own path). The real servers' side of the same is
in tests/conformance/test_smb_dfs.py (readers meeting a link at once; a hung link server)."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from shared import errors
from shared.sources.smb.ntstatus import to_sync_error
from shared.sources.smb.sessions import SessionPool
from tests.conformance.remotes import in_threads


def _pool(outcome):
    """A pool whose logon takes 0.2 s, counted, then returns a live connection or raises
    `outcome`."""
    calls: list[tuple[str, int]] = []

    def logon(server: str, port: int):
        calls.append((server, port))
        time.sleep(0.2)
        if isinstance(outcome, BaseException):
            raise outcome
        return SimpleNamespace(transport=SimpleNamespace(connected=True), session_table={1: 1})

    pool = SessionPool(logon)
    return pool, calls


def test_threads_asking_at_once_share_one_logon_and_its_connection():
    pool, calls = _pool(None)
    got: list = []
    in_threads(lambda _: got.append(pool.get("fs2.corp:445")), range(6))
    assert calls == [("fs2.corp", 445)]
    assert len({id(c) for c in got}) == 1
    assert pool.get("fs2.corp:445") is got[0] and len(calls) == 1  # kept: no logon again


def test_a_shared_logon_failure_is_each_thread_s_own_error_with_its_own_path():
    pool, calls = _pool(errors.Transient("the file server did not answer the logon", None))
    failures: dict[str, errors.SyncError] = {}
    lock = threading.Lock()

    def read(path: str) -> None:
        try:
            pool.get("fs2.corp:445")
        except errors.SyncError as exc:
            with lock:
                failures[path] = to_sync_error(exc, path)

    in_threads(read, [f"link/f{i}.bin" for i in range(5)])
    assert len(calls) == 1
    assert {p: e.path for p, e in failures.items()} == {p: p for p in failures}
    assert len(failures) == 5 and {e.cause for e in failures.values()} == {"transient"}


def test_a_logon_after_a_failed_one_is_tried_again():
    pool, calls = _pool(errors.Transient("no answer", None))
    for _ in range(2):
        with pytest.raises(errors.Transient):
            pool.get("fs2.corp:445")
    assert len(calls) == 2  # a failure is not remembered: the next file tries again
