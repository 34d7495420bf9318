"""Live progress of a long initial sync, as the admin watches it: a total once listed, a
percentage that grows, the throughput and a time left; the same run read back when done."""
from __future__ import annotations

import time

import pytest

from tests.e2e.helpers import new_connector, write
from tests.fixtures.proxy import slowed_s3
from tests.fixtures.stack import Stack, wait_run

pytestmark = pytest.mark.e2e
KB = 1024


@pytest.fixture
def slow_stack(s3, graph, smtp, tmp_path_factory):
    with slowed_s3(s3, 2 * 1024 * KB) as via:  # 2,000 files of 8 KiB: ~8 s of uploads
        st = Stack(via, tmp_path_factory.mktemp("progress"), graph, smtp).start(
            transfer_workers=1)
        yield st
        st.stop()


def test_a_long_first_sync_shows_a_total_a_growing_percentage_and_time_left(slow_stack, samba):
    root = samba.share_dir / "progress"
    for i in range(2000):
        write(root, f"d{i % 20:02d}/f{i:04d}.bin", bytes([i % 251]) * 8 * KB)
    api = slow_stack.api()
    cid = new_connector(api, samba, "progress", "progress")["id"]
    seen: list[dict] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        view = api.get(f"/connectors/{cid}").json()["status"]
        p = view["progress"]
        if view["run"] and view["run"]["phase"] == "finished":
            break
        if p["files_total"] is not None and p["bytes_per_s"]:
            seen.append(p)
        time.sleep(0.5)
    assert len(seen) >= 3, "the run ended before its progress could be watched"
    assert all(p["files_total"] == 2000 and p["bytes_total"] == 2000 * 8 * KB for p in seen)
    assert all(p["files_listed"] == 2000 for p in seen)  # listed before the total is known
    percents = [p["percent"] for p in seen]
    assert percents == sorted(percents) and 0 <= percents[0] < percents[-1] < 100
    assert all(p["eta_s"] is not None and p["eta_s"] > 0 for p in seen)
    assert seen[-1]["eta_s"] < seen[0]["eta_s"] * 1.5  # it comes down as the run goes on

    done = wait_run(api, cid)["status"]["progress"]
    assert (done["percent"], done["eta_s"], done["files_transferred"]) == (100.0, None, 2000)


async def test_the_console_shows_the_bar_moving_with_a_total_and_time_left(
        slow_stack, samba, browser, request):
    from playwright.async_api import expect

    from tests.e2e.test_console import login
    from tests.fixtures.browser import Console
    root = samba.share_dir / "progress-ui"
    for i in range(2000):
        write(root, f"d{i % 20:02d}/f{i:04d}.bin", bytes([i % 251]) * 8 * KB)
    api = slow_stack.api()
    cid = new_connector(api, samba, "progress-ui", "progress-ui")["id"]
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        con = Console(await context.new_page(), f"http://127.0.0.1:{slow_stack.port}",
                      request.node.name)
        await login(con, slow_stack, route=f"connectors/{cid}")
        page = con.page
        await expect(page.locator("#run-percent")).to_contain_text("% ·", timeout=60_000)
        await expect(page.locator("#run-jobs")).to_contain_text("of 2000 changes done")
        await expect(page.locator("#run-eta")).to_be_visible()
        first = await page.locator("#run-bar").get_attribute("style")
        await con.shot("progress")
        await expect(page.locator("#run-bar")).not_to_have_attribute("style", first,
                                                                      timeout=20_000)
        assert not con.errors, con.errors
    finally:
        await context.close()
