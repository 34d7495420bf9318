"""A SharePoint connector's full enumeration (its first listing, or one after its position
expired) is kept page by page as it goes: a scanner SIGKILLed midway is replaced, and the new one
goes on from the last page kept instead of the library's first (a library of a million items is
5,000 pages of its tenant's throttled requests). The sync is whole, and what was kept goes once
the position is saved. Through every service against the Graph emulator, on a stack of its own
(its scanner is killed, and its claims expire in 3 s)."""
from __future__ import annotations

import math
import time

import pytest
import redis

from tests.e2e.helpers import bucket_tree
from tests.e2e.sharepoint_helpers import library_tree, new_site, new_sp_connector
from tests.fixtures.stack import REDIS_URL, Stack, wait_run

pytestmark = pytest.mark.e2e

PAGE = 4  # items a delta page


@pytest.fixture
def own_stack(s3, graph, tmp_path):
    (tmp_path / "logs").mkdir()
    # A dead scanner's scan is republished once its claim is 3 s old (60 by default).
    st = Stack(s3, tmp_path / "logs", graph, SCAIDRIVE_CLAIM_TTL_S="3").start()
    yield st
    st.stop()


def wait_for(check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


@pytest.mark.parametrize("expired", [False, True], ids=["kept", "link-expired"])
def test_a_scanner_killed_mid_enumeration_is_followed_from_the_last_page_kept(
        own_stack, graph, s3, monkeypatch, expired):
    """`link-expired`: Graph no longer takes the link kept (410 resyncRequired) when the new
    scanner follows it: the enumeration starts over, and the sync is whole all the same."""

    monkeypatch.setattr(graph, "page_size", PAGE)
    api, site, r = own_stack.api(), new_site(graph), redis.Redis.from_url(REDIS_URL)
    drive = graph.add_library(site, "Documents")
    for i in range(24):
        graph.put_file(drive, f"F{i % 3}/f{i:02d}.txt", f"file {i}".encode())
    pages = math.ceil((1 + 3 + 24) / PAGE)  # the root, the folders, the files: 7
    kept = f"{own_stack.ns}:enum_items:{{}}"
    graph.hold_delta(drive, 3)
    try:
        cid = new_sp_connector(api, graph, site, "Documents", "sp-resume")["id"]
        # Three pages kept; the scanner waits for the fourth.
        wait_for(lambda: r.hlen(kept.format(cid)) == 3 * PAGE)
        own_stack.kill("scanner")
        if expired:
            graph.expire_delta_tokens()
        own_stack.spawn("scanner")
    finally:
        graph.hold_delta(drive, None)

    assert wait_run(api, cid)["status"]["run"]["outcome"] == "success"
    assert bucket_tree(s3.client(), "sp-resume") == library_tree(graph, drive)
    # 3 pages, then the 4 left; the page the killed scanner waited for is served to nobody.
    # Without the pages kept: 3, then all 7 again.
    served = graph.delta_pages(drive)
    # Expired: 3, the resumed link refused, then all 7 again.
    assert served >= 3 + 1 + pages if expired else served <= pages + 1, served
    logs = own_stack.logs()
    assert "going on with a full enumeration from its 12 items kept" in logs
    assert ("the enumeration kept cannot go on" in logs) == expired
    assert not r.exists(kept.format(cid), f"{own_stack.ns}:enum:{cid}")  # gone with the save
