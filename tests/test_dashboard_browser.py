"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against a real
``leaf7 serve`` on the embedded Valkey. One browser and one server for the module; the tests
run in order (each builds on the previous one's state) and take the screenshots of
docs/dashboard.md (docs/img/, at 1280 and 375 px wide).

Playwright's sync API: these tests are plain functions (no event loop of pytest's runs)."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.support.browser import chromium
from tests.support.processes import Server, create_vendor, http, serving

pytestmark = [pytest.mark.real, pytest.mark.slow]

XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"
# Every page is screenshotted at both widths on every run, into a temporary folder (the ones of
# docs/img/, with realistic data, are made by `make screenshots`: bench/screenshots.py).


@dataclass
class World:
    server: Server
    vendor: dict[str, Any]
    browser: Any
    page: Any
    shots: Path
    dialogs: list[str] = field(default_factory=list)
    project_id: str = ""
    keys: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.server.base + path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("dash") / "data"
    vendor = create_vendor(data_dir, "Browser Vendor", "111222333")
    env = {
        "LEAF7_RATE_KEYGEN": "0",
        "LEAF7_RATE_VENDOR": "0",
        # The test webhook receiver listens on 127.0.0.1 (refused by default).
        "LEAF7_WEBHOOK_ALLOW": "127.0.0.0/8",
        "LEAF7_WEBHOOK_POLL": "0.2",
    }
    with serving(data_dir, env) as server, chromium() as browser:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        page = context.new_page()
        page.set_default_timeout(10_000)
        w = World(server, vendor, browser, page, data_dir.parent / "shots")
        page.on("dialog", lambda d: (w.dialogs.append(d.message), d.dismiss()))
        yield w


def shoot(w: World, name: str) -> None:
    """The current page at 1280 and 375 px wide (into the test's temporary folder)."""
    img = w.shots
    img.mkdir(parents=True, exist_ok=True)
    page = w.page
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)  # the chart follows the resize
        page.screenshot(path=str(img / f"dashboard-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_sign_in(world: World) -> None:
    page = world.page
    page.goto(world.url("/"))
    assert page.url.endswith("/dashboard/signin")
    shoot(world, "signin")
    page.get_by_label("API key").fill("l7_wrong")
    page.get_by_role("button", name="Sign in").click()
    assert "unknown API key" in page.text_content("p.error")
    page.get_by_label("API key").fill(world.vendor["api_key"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/")
    assert page.get_by_role("heading", name="Overview").is_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["l7_session"]["httpOnly"] and cookies["l7_session"]["sameSite"] == "Lax"


def test_create_a_project(world: World) -> None:
    page = world.page
    page.get_by_role("link", name="Projects").click()
    page.get_by_label("Name", exact=True).fill("Script Hub")
    page.get_by_label("Description").fill(XSS)
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url("**/dashboard/projects/*")
    world.project_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert page.get_by_role("heading", name="Script Hub").is_visible()
    assert page.get_by_label("Description").input_value() == XSS
    page.get_by_label("Webhook URL (empty: none)").fill("https://hooks.example.com/leaf7")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Saved.").wait_for()
    shoot(world, "project")
    page.get_by_role("link", name="Projects").click()
    shoot(world, "projects")
    assert world.dialogs == []


def test_generate_25_keys_and_download_them(world: World) -> None:
    page = world.page
    page.goto(world.url(f"/dashboard/projects/{world.project_id}/keys"))
    page.get_by_label("Amount").fill("25")
    page.get_by_label("Days").fill("7")
    page.get_by_label("Note (optional)").fill(XSS)
    page.get_by_role("button", name="Generate keys").click()
    page.get_by_text("25 keys generated.").wait_for()
    world.keys = page.get_by_label("The new keys").input_value().split()
    assert len(world.keys) == 25
    for fmt in ("txt", "csv"):
        with page.expect_download() as info:
            page.get_by_role("link", name=f"Download .{fmt}").click()
        text = Path(info.value.path()).read_text()
        assert {line.split(",")[0] for line in text.splitlines()[(fmt == "csv") :]} == set(
            world.keys
        )
    page.reload()
    assert page.locator("table.keys tbody tr").count() == 25
    # The note is shown as text: no script ran, no dialog opened.
    assert page.locator("table.keys tbody tr").first.locator(".note-text").inner_text() == XSS
    assert world.dialogs == []
    shoot(world, "keys")


def test_search(world: World) -> None:
    page = world.page
    key = world.keys[3]
    page.get_by_label("Search: key id, HWID or note").fill(key)
    page.get_by_role("button", name="Search").click()
    page.wait_for_function("() => document.querySelectorAll('table.keys tbody tr').length === 1")
    assert key in page.locator("table.keys tbody").inner_text()
    page.get_by_label("Search: key id, HWID or note").fill("onerror")
    page.get_by_role("button", name="Search").click()
    page.wait_for_function("() => document.querySelectorAll('table.keys tbody tr').length === 25")
    assert "scanned 25 keys" in page.text_content("#search-note")


def test_loader_check_appears_in_events(world: World) -> None:
    key = world.keys[0]
    status, body = http(
        "POST",
        world.url("/api/loader/execute"),
        {"project_id": world.project_id, "script_key": key, "hwid": "HW-ONE"},
    )
    assert status == 200, body
    page = world.page
    page.get_by_role("link", name="Events").click()
    page.locator("#feed").get_by_text("Key redeemed by the loader").wait_for()
    # Live: a check after the page loaded shows up by itself (htmx polling).
    status, _ = http(
        "POST",
        world.url("/api/loader/execute"),
        {"project_id": world.project_id, "script_key": "X" * 32, "hwid": "HW-TWO"},
    )
    assert status == 200
    page.locator("#feed").get_by_text("Invalid key refused").wait_for(timeout=10_000)
    shoot(world, "events")


def test_ban_unban_reset_and_set_hwid(world: World) -> None:
    page = world.page
    key = world.keys[0]
    page.goto(world.url(f"/dashboard/projects/{world.project_id}/keys?tab=active"))
    row = page.locator(f"#key-{key}")
    assert "HW-ONE" in row.inner_text()
    row.get_by_role("button", name=f"Ban key {key}").click()
    row.get_by_text("banned").wait_for()
    shoot(world, "keys-active")
    row.get_by_role("button", name=f"Unban key {key}").click()
    row.get_by_role("button", name=f"Ban key {key}").wait_for()
    row.get_by_role("button", name=f"Reset HWID of key {key}").click()
    row.get_by_text("\u2013").wait_for()  # (no HWID)
    assert "HW-ONE" not in row.inner_text()
    row.get_by_label(f"New HWID for key {key}").fill("HW-SET")
    row.get_by_role("button", name="Set HWID", exact=True).click()
    row.get_by_text("HW-SET").wait_for()
    status, active = http(
        "GET", world.url(f"/api/vendor/keys/active/{key}"), api_key=world.vendor["api_key"]
    )
    assert status == 200 and active["hwid"] == "HW-SET" and not active["banned"]


def test_edit_a_note(world: World) -> None:
    page = world.page
    key = world.keys[0]
    row = page.locator(f"#key-{key}")
    row.get_by_label(f"Edit the note of key {key}").click()
    row.get_by_label(f"Note of key {key}", exact=True).fill("VIP buyer")
    row.get_by_role("button", name=f"Save the note of key {key}").click()
    page.locator(f"#key-{key} .note-text").get_by_text("VIP buyer").wait_for()
    status, active = http(
        "GET", world.url(f"/api/vendor/keys/active/{key}"), api_key=world.vendor["api_key"]
    )
    assert status == 200 and active["note"] == "VIP buyer"


def test_bulk_ban_two_keys(world: World) -> None:
    first, second = world.keys[0], world.keys[1]
    status, body = http(
        "POST",
        world.url("/api/vendor/keys/redeem"),
        {"key_id": second, "discord_id": "444555666"},
        api_key=world.vendor["api_key"],
    )
    assert status == 200, body
    page = world.page
    page.goto(world.url(f"/dashboard/projects/{world.project_id}/keys?tab=active"))
    for key in (first, second):
        page.get_by_label(f"Select key {key}").check()
    page.get_by_role("button", name="Ban selected", exact=True).click()
    page.locator("#bulk-result").get_by_text("Banned: 2 keys.").wait_for()
    for key in (first, second):
        assert "banned" in page.locator(f"#key-{key}").inner_text()
        status, active = http(
            "GET", world.url(f"/api/vendor/keys/active/{key}"), api_key=world.vendor["api_key"]
        )
        assert status == 200 and active["banned"]
    shoot(world, "keys-active")


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append(json.loads(self.rfile.read(length) or b"null"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_send_a_test_event(world: World) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        page = world.page
        page.goto(world.url(f"/dashboard/projects/{world.project_id}"))
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        page.get_by_label("Webhook URL (empty: none)").fill(url)
        page.get_by_role("button", name="Save settings").click()
        page.get_by_text("Saved.").wait_for()
        page.get_by_role("button", name="Send test event").click()
        page.locator("#flash").get_by_text("Test event queued").wait_for()
        deadline = time.monotonic() + 15
        titles: list[str] = []
        while time.monotonic() < deadline and "Test notification" not in titles:
            time.sleep(0.1)
            titles = [e["title"] for b in list(_Receiver.received) for e in b["embeds"]]
        assert "Test notification" in titles, titles
        shoot(world, "project")
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_upload_a_script(world: World, tmp_path: Path) -> None:
    page = world.page
    page.goto(world.url(f"/dashboard/projects/{world.project_id}/script"))
    source = tmp_path / "hub.lua"
    source.write_text('print("hi " .. L7_LinkedDiscordID .. " v" .. L7_ScriptVersion)\n')
    page.get_by_label("Or upload a .lua file (replaces the text above)").set_input_files(
        str(source)
    )
    page.get_by_label("Version (empty: bump the patch number)").fill("1.2.0")
    page.get_by_role("button", name="Save script").click()
    page.get_by_text("Script saved as version 1.2.0.").wait_for()
    assert "L7_LinkedDiscordID" in page.text_content("#macros")
    assert "L7_ScriptVersion" in page.text_content("#macros")
    assert "loader.lua" in page.get_by_label("Loader").input_value()
    shoot(world, "script")


def test_other_pages(world: World) -> None:
    page = world.page
    page.goto(world.url("/dashboard/users?discord_id=111222333"))
    page.get_by_role("link", name="Blacklist").click()
    page.get_by_label("IP or CIDR").fill("203.0.113.0/24")
    page.get_by_label("Reason").fill("chargebacks")
    page.get_by_role("button", name="Add to blacklist").click()
    page.get_by_text("chargebacks").wait_for()
    shoot(world, "blacklist")
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Discord ID").fill("111222333")
    page.get_by_role("button", name="Find keys").click()
    page.get_by_text("No active keys for this Discord ID.").wait_for()
    shoot(world, "users")
    page.get_by_role("link", name="Overview").click()
    page.locator("#chart canvas").wait_for()
    assert page.text_content("#stat-12h") == "1"
    page.locator("#stat-banned").wait_for()  # loaded after the page (htmx)
    assert page.text_content("#stat-banned") == "2"  # the two keys banned in bulk
    shoot(world, "overview")
    assert world.dialogs == []


def test_rotate_the_key_signs_the_old_session_out(world: World) -> None:
    # A second browser context signed in with the current key: the "old session".
    other = world.browser.new_context()
    old = other.new_page()
    old.goto(world.url("/dashboard/signin"))
    old.get_by_label("API key").fill(world.vendor["api_key"])
    old.get_by_role("button", name="Sign in").click()
    old.wait_for_url("**/dashboard/")
    page = world.page
    page.get_by_role("link", name="Settings").click()
    assert page.text_content("#discord-link") == "Discord: linked to 111222333"
    page.get_by_role("button", name="Rotate the API key").click()
    new_key = page.get_by_label("New API key").input_value()
    assert new_key.startswith("l7_") and new_key != world.vendor["api_key"]
    shoot(world, "settings")
    # The old session is signed out; this one follows the new key.
    old.goto(world.url("/dashboard/projects"))
    assert old.url.endswith("/dashboard/signin")
    page.get_by_role("link", name="Projects").click()
    assert page.url.endswith("/dashboard/projects")
    other.close()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/dashboard/signin")
    assert world.dialogs == []
