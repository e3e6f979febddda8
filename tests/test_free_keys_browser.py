"""Free keys in a real browser (docs/free-keys.md): Debian's Chromium at 375 px, driven by
Playwright, against a real ``leaf7 serve`` whose providers are local fakes (an aiohttp app in a
thread, tests/support/freeproviders.py). From the real loader's KEY_REQUIRED (Lua 5.1 through
tests/lua/shim.lua, with a ``setclipboard``) to a key that runs with ``L7_IsPremium == false``.

Playwright's sync API: a plain function (no event loop of pytest's runs)."""

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import launch, sign_in
from tests.support.freeproviders import (
    TURNSTILE_SECRET,
    TURNSTILE_SITE_KEY,
    Fakes,
    env_for,
    three_checkpoints,
)
from tests.support.processes import create_vendor, http, serving
from tests.support.threaded import app_in_thread

pytestmark = [pytest.mark.real, pytest.mark.slow, pytest.mark.lua]

SHIM = Path(__file__).parent / "lua" / "shim.lua"
SOURCE = 'print("L7RUN premium=" .. tostring(L7_IsPremium))'
MIN_SECONDS = 2
# The page is screenshotted into the test's temporary folder (docs/img/ is made with realistic
# data by `make screenshots`: bench/screenshots.py).

from playwright import sync_api  # noqa: E402


@contextlib.contextmanager
def fake_providers() -> Iterator[tuple[Fakes, str]]:
    """The fakes on 127.0.0.1, served by their own event loop in a thread."""
    fake = Fakes()
    with app_in_thread(fake.app()) as base:
        yield fake, base


def run_loader(base: str, project_id: str, key: str | None, hwid: str) -> str:
    env = {**os.environ, "L7_LOADER_URL": f"{base}/api/loader/{project_id}/loader.lua"}
    env["L7_HWID"] = hwid
    env.pop("L7_KEY", None)
    if key is not None:
        env["L7_KEY"] = key
    # The executor's clipboard function, as Synapse-like executors have it.
    clip = "function setclipboard(s) print('CLIPBOARD ' .. s) end"
    proc = subprocess.run(
        ["lua5.1", "-e", clip, str(SHIM)], env=env, capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


def shoot(page: "sync_api.Page", tmp: Path, name: str) -> None:
    """The page at 1280 and 375 px wide (<tmp>/dashboard-<name>-<width>.png)."""
    img = tmp
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(150)  # the chart follows the resize
        page.screenshot(path=str(img / f"dashboard-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})


def configure_on_the_dashboard(
    page: "sync_api.Page", base: str, pid: str, api_key: str, fakes_base: str
) -> None:
    """Signs in, fills the project's free-keys form (three checkpoints, Turnstile), saves it,
    and copies the first return URL with its button."""
    sign_in(page, base, api_key)
    page.goto(f"{base}/dashboard/projects/{pid}")
    page.get_by_role("link", name="Free keys").click()
    page.wait_for_url(f"**/dashboard/projects/{pid}/free_keys")
    page.get_by_label("Give free keys").check()
    page.get_by_label("Least seconds at a checkpoint").fill(str(MIN_SECONDS))
    page.get_by_text("Add a checkpoint").click()  # checkpoints 2 to 5 are folded at first
    for k, c in enumerate(three_checkpoints(fakes_base)):
        box = page.locator(f"#cp{k}")
        box.get_by_label("Provider", exact=True).select_option(c["provider"])
        # Only the chosen provider's fields are shown.
        assert box.get_by_label("Link id (Work.ink)").is_visible() == ("link_id" in c)
        assert box.get_by_label("Publisher anti-bypass token").is_visible() == ("token" in c)
        box.get_by_label("Your link at the provider").fill(c["link"])
        if "link_id" in c:
            box.get_by_label("Link id (Work.ink)").fill(c["link_id"])
        if "token" in c:
            box.get_by_label("Publisher anti-bypass token").fill(c["token"])
    page.get_by_label("A human check before the first checkpoint").check()
    page.get_by_label("Site key").fill(TURNSTILE_SITE_KEY)
    page.get_by_label("Secret key").fill(TURNSTILE_SECRET)
    page.get_by_role("button", name="Save free keys").click()
    page.locator("#free-keys-form p.ok").wait_for()  # the form again (htmx), "Saved."
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    html = page.content()
    # The secrets are never sent back (TURNSTILE_SECRET, "ts-secret", is also a part of an id).
    assert three_checkpoints(fakes_base)[1]["token"] not in html
    assert f'"{TURNSTILE_SECRET}"' not in html and f">{TURNSTILE_SECRET}<" not in html
    assert page.get_by_label("Secret key").input_value() == ""
    assert page.locator("#cp1-token-set").text_content() == "set"
    # The return URL to paste at Work.ink, copied with its button.
    page.locator("#cp0 button.copy").first.click()
    assert page.locator("#cp0 button.copy").first.text_content() == "Copied"
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#cp0-return").input_value()
    assert copied.endswith(f"/getkey/{pid}/return/0?token={{TOKEN}}")


def test_the_whole_flow_at_375_px(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    vendor = create_vendor(data_dir, "Free Vendor", "111")
    key_ = vendor["api_key"]
    with (
        fake_providers() as (fake, fakes_base),
        serving(data_dir, {"LEAF7_RATE_VENDOR": "0", **env_for(fakes_base)}) as server,
        sync_api.sync_playwright() as pw,
    ):
        base = server.base
        status, project = http(
            "POST", f"{base}/api/vendor/projects",
            {"name": "Blox Hub", "description": "Free script, premium for buyers"}, key_,
        )  # fmt: skip
        assert status == 201, project
        pid = project["project_id"]
        status, _ = http(
            "PUT", f"{base}/api/vendor/projects/{pid}/source", {"source": SOURCE}, key_
        )
        assert status == 200
        browser = launch(pw)
        try:
            # The vendor sets free keys up on the dashboard, on a phone.
            dash = browser.new_context(viewport={"width": 375, "height": 800})
            dash.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
            vendor_page = dash.new_page()
            vendor_page.set_default_timeout(15_000)
            configure_on_the_dashboard(vendor_page, base, pid, key_, fakes_base)
            # What the vendor pastes at each provider (the API reads the same settings).
            status, out = http("GET", f"{base}/api/vendor/projects/{pid}/free_keys", None, key_)
            assert status == 200 and out["enabled"] and out["min_seconds"] == MIN_SECONDS, out
            assert out["turnstile"] == {"site_key": TURNSTILE_SITE_KEY}
            for k, c in enumerate(out["checkpoints"]):
                shown = vendor_page.locator(f"#cp{k}-return").input_value()
                assert shown == c["return_url"]
                fake.destinations[c["provider"]] = shown
                if "postback_url" in c:
                    fake.postback_url = vendor_page.locator(f"#cp{k}-postback").input_value()
            assert [c["provider"] for c in out["checkpoints"]] == [
                c["provider"] for c in three_checkpoints(fakes_base)
            ]

            # The real loader, without a key: the get-key link, on the clipboard.
            printed = run_loader(base, pid, None, "pc-browser")
            found = re.search(r"CLIPBOARD (\S+)", printed)
            assert found, printed
            url = found.group(1)
            assert url.startswith(f"{base}/getkey/{pid}?id=") and "pc-browser" not in url
            assert "copied to your clipboard" in printed

            page = browser.new_context(viewport={"width": 375, "height": 800}).new_page()
            page.set_default_timeout(15_000)
            response = page.goto(url)
            assert response is not None and response.status == 200
            csp = response.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and fakes_base in csp
            assert page.get_by_role("heading", name="Blox Hub").is_visible()
            assert page.get_by_text("Free script, premium for buyers").is_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            # the (fake) Turnstile widget solved itself
            page.locator(".cf-turnstile[data-solved]").wait_for(state="attached")
            page.get_by_role("button", name="Start checkpoint 1 of 3").click()
            for k in range(3):
                page.wait_for_url(f"{fakes_base}/link/*")
                page.wait_for_timeout(MIN_SECONDS * 1000 + 300)  # the ad
                page.locator("#done").click()
                page.wait_for_url(f"{base}/getkey/{pid}?id=*")
                if k < 2:
                    page.get_by_role("button", name=f"Continue: checkpoint {k + 2} of 3").click()
            assert "Done! Here is your key." in page.text_content("#message")
            key = page.get_by_label("Key (valid on this machine only)").input_value()
            assert page.locator("#expires").is_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            page.screenshot(path=str(tmp_path / "getkey-375.png"), full_page=True)
            # Opening the link again shows the same key, not a new one.
            page.goto(url)
            assert page.get_by_label("Key (valid on this machine only)").input_value() == key

            # The funnel on the dashboard: the key issued, drawn by uPlot.
            vendor_page.goto(f"{base}/dashboard/projects/{pid}/free_keys")
            assert vendor_page.text_content("#funnel-issued") == "1"
            vendor_page.locator("#funnel-chart canvas").wait_for(state="visible")
            assert vendor_page.locator("#funnel-chart .u-legend").is_visible()
            assert "Keys issued" in vendor_page.text_content("#funnel-chart")
            assert vendor_page.evaluate("document.documentElement.scrollWidth") <= 375
            shoot(vendor_page, tmp_path, "free-keys")
        finally:
            browser.close()

        # The key runs the script on the machine that asked, as a free (not premium) key.
        assert run_loader(base, pid, key, "pc-browser").strip() == "L7RUN premium=false"
        other = run_loader(base, pid, key, "pc-other")
        assert "L7RUN" not in other and "another HWID" in other
