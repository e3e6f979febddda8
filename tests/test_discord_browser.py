"""Sign in with Discord in Chromium, end to end: a real ``leaf7 serve`` and a local fake of
Discord's OAuth2 endpoints (tests/support/fake_discord.py). A vendor the operator created
signs in with its API key, links its Discord account from Settings, signs out, signs in with
Discord; with LEAF7_SIGNUP=discord a new Discord user gets a vendor account of their own. No
page breaks the CSP."""

from pathlib import Path

import pytest

from tests.support.browser import chromium, csp_violations, sign_in, watched_page
from tests.support.fake_discord import CLIENT_ID, CLIENT_SECRET, FakeDiscord, serving_in_thread
from tests.support.processes import create_vendor, serving

pytestmark = [pytest.mark.real, pytest.mark.slow]

from playwright import sync_api  # noqa: E402


def test_link_sign_in_and_sign_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    vendor = create_vendor(data_dir, "Operator Made", None)
    fake = FakeDiscord(user={"id": "700000000000000007", "username": "ada"})
    with serving_in_thread(fake) as discord_base:
        env = {
            "LEAF7_DISCORD_CLIENT_ID": CLIENT_ID,
            "LEAF7_DISCORD_CLIENT_SECRET": CLIENT_SECRET,
            "LEAF7_DISCORD_OAUTH_BASE": discord_base,
            "LEAF7_SIGNUP": "discord",
        }
        with serving(data_dir, env) as server, chromium() as browser:
            page = watched_page(browser, 10_000)
            sign_in(page, server.base, vendor["api_key"])

            page.goto(server.base + "/dashboard/settings")
            assert "not linked" in page.text_content("#discord-link")
            with page.expect_response(lambda r: "/oauth/discord/callback" in r.url) as back:
                page.get_by_role("button", name="Link your Discord account").click()
            assert back.value.status == 303  # through the fake Discord, back to Settings
            expect = sync_api.expect(page.locator("#discord-link"))
            expect.to_contain_text("linked to 700000000000000007")
            assert fake.refused == [] and len(fake.issued) == 1

            page.get_by_role("button", name="Sign out", exact=True).click()
            page.wait_for_url("**/dashboard/signin")
            page.get_by_role("link", name="Sign in with Discord").click()
            page.wait_for_url("**/dashboard/")
            page.goto(server.base + "/dashboard/settings")
            assert vendor["vendor_id"] in page.text_content("main")
            assert csp_violations(page) == []

            # Another Discord user, new here: a vendor account of their own.
            page.get_by_role("button", name="Sign out", exact=True).click()
            fake.user = {"id": "700000000000000008", "username": "bo", "global_name": "Bo"}
            page.get_by_role("link", name="Sign in with Discord").click()
            page.wait_for_url("**/dashboard/")
            page.goto(server.base + "/dashboard/settings")
            main = page.text_content("main") or ""
            assert "Bo ·" in main and vendor["vendor_id"] not in main
            assert "linked to 700000000000000008" in page.text_content("#discord-link")
            assert csp_violations(page) == []
