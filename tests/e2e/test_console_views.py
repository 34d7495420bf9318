"""The console's editing and monitoring views in Debian's chromium: a connector edited from its
detail page, dark mode, relative times, the activity chart and the connectors feeding a share
(the sign-in and the create/resolve/pause flows are in test_console.py)."""
from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import expect

from tests.e2e.helpers import new_connector
from tests.e2e.test_console import login
from tests.e2e.test_identity import USERS
from tests.fixtures.stack import wait_run

pytestmark = pytest.mark.e2e


async def test_schedule_mode_and_mapping_edited_from_the_detail_page(console, stack, samba):
    api, page = stack.api(), console.page
    samba.write_file("console-edit/a.txt", b"a")
    assert api.put("/users", json=USERS).status_code == 200  # the table maps to one of them
    cid = new_connector(api, samba, "console-edit", "console-edit", schedule="1h")["id"]
    await asyncio.to_thread(wait_run, api, cid)
    await login(console, stack, route=f"connectors/{cid}")
    await page.locator("#edit").click()
    await expect(page.get_by_role("heading", name="Edit console-edit")).to_be_visible()
    await expect(page.get_by_label("Server")).to_have_value(
        f"smb://127.0.0.1:{samba.port}/{samba.share}/console-edit")
    await expect(page.get_by_label("Password", exact=True)).to_have_value("")  # never shown
    await page.locator("#f-schedule-preset").select_option("6h")
    await page.get_by_label("Strategy").select_option("table")
    await page.get_by_label("Mapping table").fill("S-1-5-21-1-2-3-1104,u-alice")
    await console.shot("edit-form")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_text("Saved.")).to_be_visible()
    got = api.get(f"/connectors/{cid}").json()
    assert got["schedule"] == "6h" and got["identity_mapping"]["strategy"] == "table"
    updated = [a for a in api.get("/audit", params={"connector_id": cid}).json()
               if a["event"] == "connector.updated"]
    assert updated[0]["fields"] == ["identity_mapping", "schedule"]  # only what changed
    assert got["identity_version"] == 2 and got["config_version"] == 1

    await page.locator("#edit").click()
    await expect(page.get_by_label("Logon")).to_have_value("ntlm")
    await page.get_by_label("Encryption").select_option("required")  # Samba offers it
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_text("Saved.")).to_be_visible()
    got = api.get(f"/connectors/{cid}").json()
    assert got["smb_encryption"] == "required" and got["config_version"] == 2

    await page.locator("#edit").click()
    await page.get_by_label("Sync mode").select_option("two_way")
    await page.get_by_label("Admin emails").fill("not-an-address")
    await page.get_by_label("Password", exact=True).fill("not-the-password")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.locator("[data-field='admin_emails'] .field-error")).to_contain_text("email")
    await page.get_by_label("Admin emails").fill("ops@example.com")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.locator("[data-field='password'] .field-error")).to_have_text(
        "the file server refused this user name and password")
    await console.shot("edit-refused")
    got = api.get(f"/connectors/{cid}").json()
    assert got["sync_mode"] == "one_way" and got["admin_emails"] == []  # nothing was saved


async def test_dark_mode_relative_times_and_the_connectors_feeding_a_share(console, stack, samba):
    api, page = stack.api(), console.page
    samba.write_file("console-fed/a.txt", b"a")
    cid = new_connector(api, samba, "console-fed", "console-fed")["id"]
    await asyncio.to_thread(wait_run, api, cid)
    await login(console, stack, route="shares")
    fed = page.locator("tr[data-name='console-fed'] .fed-by")
    await expect(fed).to_have_text("console-fed")
    await fed.get_by_role("link").click()
    await expect(page).to_have_url(re.compile(rf"#/connectors/{cid}$"))
    await expect(page.locator("#last-success time")).to_have_text(
        re.compile(r"^(just now|\d+ min ago)$"))
    assert await page.locator("#last-success time").get_attribute("title")  # the exact time
    chart = page.locator("#activity-chart")  # drawn from the hourly counters the run wrote
    await expect(chart.locator("canvas")).to_have_count(1)
    await expect(chart).to_have_attribute("data-points", "24")
    await expect(chart).to_have_attribute("data-files", "1")
    await expect(page.locator("#activity-totals")).to_contain_text("1 files synced, 0 errors")
    await page.locator("#activity-period").select_option("week")
    await expect(chart).to_have_attribute("data-points", "168")
    hourly = api.get(f"/connectors/{cid}/stats/hourly").json()
    assert len(hourly) == 24 and sum(h["files_transferred"] for h in hourly) == 1
    assert hourly[-1]["files_transferred"] == 1  # this hour
    await page.emulate_media(color_scheme="dark")  # follows the system's setting
    assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == \
        "rgb(18, 22, 29)"
    await console.shot("dark-mode")
    await page.emulate_media(color_scheme="light")
    assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == \
        "rgb(245, 247, 250)"
