"""The throttles in the console (Debian's chromium): edited from a connector's edit page, a bad
rate refused at its field in plain words, saved as a PATCH of what changed, shown on the detail
page, and lifted again."""
from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.e2e.helpers import new_connector
from tests.e2e.test_console import login

pytestmark = pytest.mark.e2e


async def test_throttles_edited_in_the_console(console, stack, samba):
    api, page = stack.api(), console.page
    samba.write_file("console-throttle/a.txt", b"a")
    cid = new_connector(api, samba, "console-throttle", "console-throttle")["id"]
    await login(console, stack, route=f"connectors/{cid}/edit")
    await expect(page.get_by_role("heading", name="Edit console-throttle")).to_be_visible()
    await page.get_by_label("Bandwidth limit").fill("fast")
    await page.get_by_label("Max parallel transfers").fill("2")
    await page.get_by_label("Sync windows").fill("mon-fri 19:00-07:00\nweekend 00:00-24:00")
    await page.get_by_label("Time zone of the windows").fill("Europe/Berlin")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.locator("[data-field='bandwidth_limit'] .field-error")).to_contain_text(
        "is not a rate")
    await page.get_by_label("Bandwidth limit").fill("08:00,2M 18:00,off")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_text("Saved.")).to_be_visible()
    got = api.get(f"/connectors/{cid}").json()
    assert got["bandwidth_limit"] == "08:00,2M 18:00,off"
    assert got["max_parallel_transfers"] == 2
    assert got["sync_windows"] == {"timezone": "Europe/Berlin", "windows": [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "19:00", "end": "07:00"},
        {"days": ["sat", "sun"], "start": "00:00", "end": "24:00"}]}
    await expect(page.locator("table.kv").last).to_contain_text(
        "mon,tue,wed,thu,fri 19:00-07:00; sat,sun 00:00-24:00 (Europe/Berlin)")
    updated = [a for a in api.get("/audit", params={"connector_id": cid}).json()
               if a["event"] == "connector.updated"]
    # Only what was edited: an unchanged identity mapping is not sent (it would relabel files).
    assert updated[0]["fields"] == ["bandwidth_limit", "max_parallel_transfers", "sync_windows"]

    await page.locator("#edit").click()  # unchanged: the form shows what is stored
    await expect(page.get_by_label("Max parallel transfers")).to_have_value("2")
    await page.get_by_label("Bandwidth limit").fill("")
    await page.get_by_label("Sync windows").fill("")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_text("Saved.")).to_be_visible()
    got = api.get(f"/connectors/{cid}").json()
    assert (got["bandwidth_limit"], got["max_parallel_transfers"], got["sync_windows"]) == (
        None, 2, None)
