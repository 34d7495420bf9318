"""The admin console in a real headless Chromium, against the whole stack (Samba, S3, RabbitMQ,
Redis, SMTP): what an admin sees on the pages, and what their clicks do to the files."""
from __future__ import annotations

import asyncio
import re
import time

import pytest
from playwright.async_api import expect

from tests.e2e.helpers import bucket_tree, disk_tree, new_connector
from tests.e2e.test_two_way import put, two_way
from tests.e2e.test_two_way_conflicts import open_conflicts
from tests.fixtures.stack import sync_and_wait, wait_run

pytestmark = pytest.mark.e2e
ADMIN = "Console Admin"
MARKUP_NAME = "console <i>smb</i> &amp; co"  # must show as typed: names are text, not HTML
SLOW = 120_000  # ms: a whole sync shown on a page


async def login(console, stack, name: str = ADMIN, route: str = "connectors") -> None:
    page = console.page
    await console.open(route)
    await page.get_by_label("Your name").fill(name)
    await page.get_by_label("Admin token").fill(stack.token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who")).to_have_text(name)


async def api_status(page, path: str) -> int:
    """The status the API gives this browser (its cookie, if any) for GET path."""
    return await page.evaluate("p => fetch('/api/v1' + p).then(r => r.status)", path)


async def until(check, what: str, timeout: float = 60):  # noqa: ASYNC109 - a poll's deadline
    """Polls `check` (blocking, run in a thread) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while not (result := await asyncio.to_thread(check)):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)
    return result


async def test_nothing_without_a_session_then_login(console, stack):
    api, page = stack.api(), console.page
    assert api.post("/shares", json={"name": "console-private"}).status_code == 201
    await console.open("shares")
    await expect(page.locator("form.login")).to_be_visible()
    await console.shot("login")
    assert await page.locator("header nav").count() == 0
    assert "console-private" not in await page.content()
    assert await api_status(page, "/shares") == 401

    await page.get_by_label("Your name").fill(ADMIN)
    await page.get_by_label("Admin token").fill("not-the-token-at-all")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#login-error")).to_have_text("Wrong admin token.")
    await console.shot("wrong-token")
    assert "console-private" not in await page.content()

    await page.get_by_label("Admin token").fill(stack.token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who")).to_have_text(ADMIN)
    # The route asked for before signing in is the one shown after.
    await expect(page.locator("#shares-table tr[data-name='console-private']")).to_be_visible()
    await console.shot("shares-after-login")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("form.login")).to_be_visible()
    assert await api_status(page, "/shares") == 401
    await console.open("shares")
    await expect(page.locator("form.login")).to_be_visible()


async def test_smb_connector_created_in_the_form_syncs(console, stack, samba, s3):
    api, page = stack.api(), console.page
    for i in range(5):
        samba.write_file(f"console-smb/docs/f{i}.txt", f"file {i}".encode())
    samba.make_unreadable_dir("console-smb/locked")
    await login(console, stack)
    await page.get_by_role("link", name="New connector").click()
    await expect(page.get_by_role("heading", name="New SMB connector")).to_be_visible()
    await page.get_by_label("Name", exact=True).fill(MARKUP_NAME)
    await page.get_by_label("Server").fill("nope")
    await page.get_by_label("Username").fill(samba.username)
    await page.get_by_label("Password", exact=True).fill(samba.password)
    await page.locator("#new-share-name").fill("console-smb")
    await page.get_by_role("button", name="Create share").click()
    await expect(page.get_by_text("Share console-smb created.")).to_be_visible()
    await expect(page.get_by_label("Target share")).to_have_value("console-smb")
    await page.locator("#f-schedule-preset").select_option("1h")
    await page.get_by_role("button", name="Create connector").click()
    server_error = page.locator("[data-field='server'] .field-error")
    await expect(server_error).to_contain_text("must look like")
    await console.shot("form-invalid-server")
    assert MARKUP_NAME not in [c["name"] for c in api.get("/connectors").json()]

    await page.get_by_label("Server").fill(
        f"smb://127.0.0.1:{samba.port}/{samba.share}/console-smb")
    await page.get_by_label("Password", exact=True).fill("not-the-password")
    await page.get_by_role("button", name="Test connection").click()
    await expect(page.locator("#test-results li.failed")).to_have_text(
        "✗ the file server refused this user name and password")
    await page.get_by_role("button", name="Create connector").click()
    await expect(page.locator("[data-field='password'] .field-error")).to_have_text(
        "the file server refused this user name and password")
    await console.shot("form-wrong-password")
    await page.get_by_label("Password", exact=True).fill(samba.password)
    await page.get_by_label("Logon").select_option("kerberos")  # and no domain's DNS name
    await page.get_by_role("button", name="Create connector").click()
    await expect(page.locator("[data-field='smb_auth'] .field-error")).to_contain_text(
        "Kerberos needs the domain's DNS name")
    await page.get_by_label("Logon").select_option("ntlm")
    await page.get_by_role("button", name="Test connection").click()
    await expect(page.locator("#test-results li.ok")).to_have_count(2)  # logon, folder
    await console.shot("form-test-connection")
    await page.get_by_role("button", name="Create connector").click()
    await expect(page).to_have_url(re.compile(r"#/connectors/[0-9a-f]+$"))
    cid = page.url.rsplit("/", 1)[1]
    await console.shot("detail-started")
    await expect(page.locator("#run-phase")).to_have_text("finished", timeout=SLOW)
    await expect(page.locator("#run-outcome")).to_have_text("partial")
    await expect(page.locator("#progress-files_transferred")).to_have_text("5")
    await expect(page.locator("#progress-files_errored")).not_to_have_text("0")
    await expect(page.locator("#last-success")).not_to_have_text("—")
    synced_today = page.locator("#stats tr", has_text="Files synced").locator("td").first
    await expect(synced_today).to_have_text("5")
    await expect(page.locator("#storage-usage")).to_have_text("30 B")  # 5 files of 6 bytes
    await console.shot("detail-finished")
    readable = disk_tree(samba.path("console-smb") / "docs")
    in_bucket = bucket_tree(s3.client(), "console-smb")
    assert {f"docs/{k}": v for k, v in readable.items()}.items() <= in_bucket.items()
    await expect(page.locator("h1")).to_contain_text(MARKUP_NAME)
    assert await page.locator("h1 i").count() == 0

    await page.locator("#tab-logs").click()
    await page.locator("#cause-filter").select_option("permission_denied")
    await expect(page).to_have_url(re.compile(r"/logs\?cause=permission_denied$"))
    rows = page.locator("#tab-content tbody tr")
    await expect(rows.first).to_contain_text("locked")
    await expect(rows.first).to_contain_text("permission_denied")
    await expect(rows.first).to_contain_text("The service account may not read this")
    for text in await rows.all_inner_texts():
        assert "permission_denied" in text
    await console.shot("logs-permission-denied")
    await page.locator("#failure-search").fill("no-such-name")
    await page.locator("#failure-search").press("Enter")
    await expect(page).to_have_url(re.compile(r"cause=permission_denied&q=no-such-name$"))
    await expect(page.locator("#tab-content")).to_contain_text("No failures recorded.")
    csv_link = await page.locator("#failures-csv").get_attribute("href")
    assert "format=csv" in csv_link and "q=no-such-name" in csv_link
    await page.locator("#failure-search").fill("")
    await page.locator("#failure-search").press("Enter")
    await expect(rows.first).to_contain_text("locked")

    await page.get_by_role("link", name="Connectors").click()
    row = page.locator(f"#connectors-table tr[data-id='{cid}']")
    await expect(row).to_contain_text(MARKUP_NAME)
    await expect(row).to_contain_text("SMB")
    await expect(row.locator("td").nth(4)).to_have_text("1")  # errors today: the locked folder
    await console.shot("connectors-list")
    await console.open(f"connectors/{cid}/identities")
    await expect(page.locator("#tab-content tbody tr").first).to_contain_text("system")
    await console.shot("identities")
    assert await page.locator("main i").count() == 0


async def test_conflict_resolved_by_clicking_the_winner(console, stack, samba, s3, smtp):
    api, page, root = stack.api(), console.page, samba.path("console-tw")
    cid = await asyncio.to_thread(
        two_way, api, samba, "console-tw", {"report.txt": b"as synced", "notes.txt": b"as synced"},
        admin_emails=["console-admins@example.com"])
    samba.write_file("console-tw/report.txt", b"the share's edit")
    put(s3, "console-tw", "report.txt", b"ScaiDrive's longer edit")
    samba.write_file("console-tw/notes.txt", b"notes: share")
    put(s3, "console-tw", "notes.txt", b"notes: ScaiDrive")

    await login(console, stack, route=f"connectors/{cid}")
    before = api.get(f"/connectors/{cid}").json()["status"]["run"]["run_id"]
    await page.get_by_role("button", name="Sync now").click()
    await expect(page.locator("#action-message")).to_have_text("Sync requested.")
    await asyncio.to_thread(wait_run, api, cid, after=before)
    conflicts = await asyncio.to_thread(open_conflicts, api, cid, 2)

    await page.locator("#tab-conflicts").click()
    card = page.locator(".conflict[data-path='report.txt']")
    await expect(card).to_be_visible()
    size, etag = card.locator("tr", has_text="Size"), card.locator("tr", has_text="Etag")
    await expect(size.locator(".side-source")).to_have_text("16 B")
    await expect(size.locator(".side-scaidrive")).to_have_text("23 B")
    await expect(etag.locator(".side-scaidrive")).not_to_have_text("—")
    await console.shot("conflicts-open")

    await card.get_by_role("button", name="ScaiDrive").click()
    await expect(card.locator(".conflict-status")).to_contain_text("ScaiDrive wins")
    await until(lambda: (root / "report.txt").read_bytes() == b"ScaiDrive's longer edit",
                "ScaiDrive's version on the share")
    rec = api.get(f"/conflicts/{conflicts['report.txt']['id']}").json()
    assert (rec["winner"], rec["resolved_by"]) == ("scaidrive", ADMIN)

    # Someone else settles the other one meanwhile: the page shows the API's 409.
    other = page.locator(".conflict[data-path='notes.txt']")
    resp = api.post(f"/conflicts/{conflicts['notes.txt']['id']}/resolve",
                    json={"winner": "source", "resolved_by": "bob@example.com"})
    assert resp.status_code == 202, resp.text
    await other.get_by_role("button", name="Keep both").click()
    await expect(other.locator(".conflict-status")).to_contain_text("already resolved")
    await expect(other.locator(".conflict-status")).to_contain_text("bob@example.com")
    await console.shot("conflict-409")
    await until(lambda: (root / "notes.txt").read_bytes() == b"notes: share", "the source kept")

    await page.locator("#conflict-state").select_option("resolved")
    await expect(page.locator(".conflict[data-path='report.txt']")).to_contain_text(
        f"Resolved: scaidrive chosen by {ADMIN}")
    await console.shot("conflicts-resolved")


async def test_conflict_decision_found_stale_shows_superseded(console, stack, samba, s3, smtp):
    """The share's file is edited again after the conflict was detected: the API takes the
    click (202), the transfer worker finds the change and supersedes the conflict instead of
    applying it, and the card, following the decision, says so with the reason."""
    api, page, root = stack.api(), console.page, samba.path("console-stale")
    cid = await asyncio.to_thread(two_way, api, samba, "console-stale", {"plan.txt": b"as synced"},
                                  admin_emails=["console-admins@example.com"])
    samba.write_file("console-stale/plan.txt", b"the share's edit")
    put(s3, "console-stale", "plan.txt", b"ScaiDrive's longer edit")
    await asyncio.to_thread(sync_and_wait, api, cid)
    (rec,) = (await asyncio.to_thread(open_conflicts, api, cid, 1)).values()

    await login(console, stack, route=f"connectors/{cid}")
    await page.locator("#tab-conflicts").click()
    card = page.locator(".conflict[data-path='plan.txt']")
    await expect(card).to_be_visible()
    samba.write_file("console-stale/plan.txt", b"the share's second edit")  # after detection
    await card.get_by_role("button", name="ScaiDrive").click()
    reason = "the source version changed since detection"
    status = card.locator(".conflict-status")
    await expect(status).to_contain_text(f"Not applied: {reason}", timeout=30_000)
    await expect(status).to_contain_text("Nothing was overwritten")
    await expect(card.locator(".conflict-outcome")).to_contain_text(f"Superseded ({reason})")
    await expect(card.locator(".hint")).to_contain_text("state: superseded")
    await console.shot("conflict-superseded")
    assert (root / "plan.txt").read_bytes() == b"the share's second edit"
    got = api.get(f"/conflicts/{rec['id']}").json()
    assert (got["state"], got["reason"], got["winner"]) == ("superseded", reason, "scaidrive")

    await page.locator("#conflict-state").select_option("superseded")
    await expect(page.locator(".conflict[data-path='plan.txt']")).to_contain_text(
        f"Superseded ({reason}): the next run detects it again.")


async def test_pause_resume_then_delete_keeping_the_share(console, stack, samba, s3):
    api, page = stack.api(), console.page
    for i in range(3):
        samba.write_file(f"console-keep/k{i}.txt", f"keep {i}".encode())
    cid = new_connector(api, samba, "console-keep", "console-keep")["id"]
    await asyncio.to_thread(wait_run, api, cid)
    synced = bucket_tree(s3.client(), "console-keep")
    assert len(synced) == 3

    await login(console, stack, route=f"connectors/{cid}")
    state = page.locator("#state")
    await expect(state).to_have_text("idle")
    await page.get_by_role("button", name="Pause").click()
    await expect(state).to_have_text("paused")
    await expect(page.get_by_role("button", name="Sync now")).to_be_disabled()
    assert api.get(f"/connectors/{cid}").json()["status"]["state"] == "paused"
    await console.shot("paused")
    await page.get_by_role("button", name="Resume").click()
    await expect(state).not_to_have_text("paused")
    assert api.get(f"/connectors/{cid}").json()["status"]["state"] != "paused"
    await console.shot("resumed")

    await page.get_by_label("New password").fill(samba.password)
    await page.get_by_role("button", name="Update credentials").click()
    await expect(page.get_by_text("Credentials updated.")).to_be_visible()
    await expect(page.get_by_label("New password")).to_have_value("")
    updated = api.get(f"/audit?connector_id={cid}&event=connector.updated").json()
    assert [(a["fields"], a["actor"]) for a in updated] == [(["password"], ADMIN)]

    # The share cannot go while the connector targets it: the Shares page says why.
    await page.get_by_role("link", name="Shares").click()
    share_row = page.locator("#shares-table tr[data-name='console-keep']")
    await share_row.get_by_role("button", name="Delete").click()
    await share_row.locator(".confirm-delete").click()
    await expect(share_row).to_contain_text("target of connector")
    await console.shot("share-delete-refused")
    assert api.get("/shares/console-keep").status_code == 200

    await console.open(f"connectors/{cid}")
    await page.get_by_role("button", name="Delete", exact=True).click()
    await expect(page.locator("#delete-panel")).to_contain_text("console-keep")
    await console.shot("delete-choices")
    await page.locator("#delete-keep").click()
    await expect(page).to_have_url(re.compile(r"#/connectors$"))
    await expect(page.locator(".flash")).to_contain_text(
        "share console-keep and its files are kept")
    await expect(page.locator(f"#connectors-table tr[data-id='{cid}']")).to_have_count(0)
    assert api.get(f"/connectors/{cid}").status_code == 404
    await page.get_by_role("link", name="Shares").click()
    await expect(page.locator("#shares-table tr[data-name='console-keep']")).to_be_visible()
    await console.shot("shares-kept")
    assert bucket_tree(s3.client(), "console-keep") == synced

    # The audit log names who did it.
    await page.get_by_role("link", name="Audit log").click()
    await page.locator("#event-filter").select_option("connector.paused")
    rows = page.locator("#audit-table tbody tr", has_text="console-keep")
    await expect(rows.first).to_contain_text(ADMIN)
    resumed = page.locator("#audit-table tbody tr", has_text="connector.resumed")
    await expect(resumed).to_have_count(0)
    await console.shot("audit-paused")

    # Deleting the share itself works from the Shares page once no connector targets it.
    await page.get_by_role("link", name="Shares").click()
    share_row = page.locator("#shares-table tr[data-name='console-keep']")
    await share_row.get_by_role("button", name="Delete").click()
    await share_row.locator(".confirm-delete").click()
    await expect(page.locator("#shares-status")).to_contain_text("Share console-keep deleted.")
    assert api.get("/shares/console-keep").status_code == 404


async def test_sharepoint_and_two_way_fields_show_their_errors(console, stack):
    page = console.page
    await login(console, stack, route="connectors/new/sharepoint")
    await expect(page.get_by_role("heading", name="New SharePoint connector")).to_be_visible()
    await page.get_by_label("Name", exact=True).fill("console-sp")
    await page.get_by_label("Tenant ID").fill("not-a-guid")
    await page.get_by_label("Application (client) ID").fill("00000000-0000-0000-0000-000000000001")
    await page.get_by_label("Client secret").fill("s3cret")
    await page.get_by_label("Site URL").fill("http://contoso.sharepoint.com/sites/team")
    await expect(page.locator("#two-way-fields")).to_be_hidden()
    await page.get_by_label("Sync mode").select_option("two_way")
    await page.get_by_label("Admin emails").fill("ok@example.com, not-an-address")
    await page.get_by_label("Credential").select_option("certificate")
    await expect(page.get_by_label("Client secret")).to_be_hidden()
    await page.get_by_label("Credential").select_option("client_secret")
    await page.get_by_role("button", name="Create connector").click()
    field_error = lambda key: page.locator(f"[data-field='{key}'] .field-error")  # noqa: E731
    await expect(field_error("tenant_id")).to_contain_text("should match pattern")
    await expect(field_error("site_url")).to_contain_text("must look like https://")
    await expect(field_error("admin_emails")).to_contain_text("email")
    await expect(field_error("target_share")).not_to_be_empty()
    await expect(field_error("client_id")).to_be_empty()
    await console.shot("sharepoint-form-errors")
    assert "console-sp" not in [c["name"] for c in stack.api().get("/connectors").json()]


async def test_held_deletions_rejected_from_the_tab(console, stack, samba, s3):
    api, page, root = stack.api(), console.page, samba.path("console-held")
    cid = await asyncio.to_thread(two_way, api, samba, "console-held",
                                  {f"h{i}.txt": f"held {i}".encode() for i in range(5)})
    for i in range(4):  # 80% deleted at the source: more than max_delete_percent (50)
        (root / f"h{i}.txt").unlink()
    view = await asyncio.to_thread(sync_and_wait, api, cid)
    assert view["status"]["run"]["deletes_held"] == 4

    await login(console, stack, route="connectors")
    row = page.locator(f"#connectors-table tr[data-id='{cid}']")
    await expect(row).to_contain_text("4 deletions held")
    await row.get_by_role("link").click()
    await page.locator("#tab-held").click()
    await expect(page.locator("#tab-content")).to_contain_text("4 deletion(s) held back")
    rows = page.locator("#tab-content tbody tr")
    await expect(rows).to_have_count(4)
    await expect(rows.first).to_contain_text("h0.txt")
    await expect(rows.first).to_contain_text("in ScaiDrive")
    await console.shot("held-deletions")
    await page.get_by_role("button", name="Reject: restore them").click()
    await expect(page.locator("#held-status")).to_contain_text("4 deletion(s) rejected")
    await expect(page.locator("#tab-content")).to_contain_text("No deletions are held.")
    # Each restore is an atomic write (a hidden temp file renamed over): five names on the
    # disk may still be three files and two temps being written; wait for the files.
    await until(lambda: disk_tree(root) == bucket_tree(s3.client(), "console-held"),
                "the rejected deletions restored on the share, byte for byte")
    assert len(disk_tree(root)) == 5
