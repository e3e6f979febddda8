"""Sign in with Discord over HTTP, against a local fake of Discord's OAuth2 endpoints
(tests/support/fake_discord.py): sign-in of a linked vendor, linking from Settings, sign-up
(LEAF7_SIGNUP=discord) off and on, a wrong ``state``, a replayed code, an account already
linked to another vendor. The whole flow in Chromium: tests/test_discord_browser.py."""

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from service.config import ConfigError, Settings
from tests.support.api import Api, ApiWith
from tests.support.dashboard import csrf_of, sign_in
from tests.support.fake_discord import CLIENT_ID, CLIENT_SECRET, FakeDiscord

LINKED = "1234567890"  # the Discord account of Api.login()'s vendor


@pytest.fixture
def fake() -> FakeDiscord:
    return FakeDiscord()


@pytest.fixture
async def discord_server(aiohttp_server: Any, fake: FakeDiscord) -> TestServer:
    server: TestServer = await aiohttp_server(fake.app())
    return server


async def _api(
    api_with: ApiWith, app_redis: Redis, discord_server: TestServer, **changes: Any
) -> Api:
    return await api_with(
        app_redis,
        discord_client_id=CLIENT_ID,
        discord_client_secret=CLIENT_SECRET,
        discord_oauth_base=str(discord_server.make_url("")).rstrip("/"),
        **changes,
    )


@pytest.fixture
async def ada(
    api_with: ApiWith, app_redis: Redis, discord_server: TestServer, fake: FakeDiscord
) -> Api:
    """A vendor's app with Discord sign-in configured, and Discord's user "ada" (LINKED)."""
    api = await _api(api_with, app_redis, discord_server)
    fake.user = {"id": LINKED, "username": "ada"}
    return api


async def _to_discord(c: TestClient[Any, Any], link_csrf: str | None = None) -> str:
    """Starts a sign-in (or, with the Settings page's CSRF token, a link); the fake Discord
    answers at once: returns the callback URL it sends the browser to."""
    if link_csrf is None:
        resp = await c.get("/dashboard/oauth/discord/start", allow_redirects=False)
    else:
        resp = await c.post(
            "/dashboard/oauth/discord/link", data={"csrf": link_csrf}, allow_redirects=False
        )
    assert resp.status == 303, await resp.text()
    authorize = resp.headers["Location"]
    assert "/oauth2/authorize?" in authorize
    q = parse_qs(urlsplit(authorize).query)
    assert q["code_challenge_method"] == ["S256"] and q["scope"] == ["identify"]
    assert "Secure" not in resp.headers["Set-Cookie"]  # plain http here
    back = await c.session.get(authorize, allow_redirects=False)
    assert back.status == 302
    callback: str = back.headers["Location"]
    assert urlsplit(callback).path == "/dashboard/oauth/discord/callback"
    return callback


async def _callback(c: TestClient[Any, Any], url: str, status: int = 303) -> str:
    resp = await c.session.get(url, allow_redirects=False)
    text = await resp.text()
    assert resp.status == status, (resp.status, text)
    return resp.headers.get("Location", "") if status == 303 else text


async def _signed_in_as(c: TestClient[Any, Any]) -> str:
    page = await c.get("/dashboard/settings", allow_redirects=False)
    assert page.status == 200
    return await page.text()


async def test_linked_vendor_signs_in(
    ada: Api, fake: FakeDiscord, discord_server: TestServer
) -> None:
    api = ada
    resp = await api.client.get("/dashboard/signin")
    origin = str(discord_server.make_url("")).rstrip("/")
    # Only Discord's origin joins form-action (Settings' link form is redirected there).
    assert f"form-action 'self' {origin};" in resp.headers["Content-Security-Policy"]
    signin = await resp.text()
    assert 'href="/dashboard/oauth/discord/start">Sign in with Discord</a>' in signin
    assert await _callback(api.client, await _to_discord(api.client)) == "/dashboard/"
    assert api.vendor_id in await _signed_in_as(api.client)

    # The session is the API key's kind: a key rotation ends it too.
    await api.call("POST", "/api/vendor/api_key/rotate")
    gone = await api.client.get("/dashboard/settings", allow_redirects=False)
    assert gone.status == 303 and gone.headers["Location"] == "/dashboard/signin"


async def test_signup_off_then_on(
    api_with: ApiWith, app_redis: Redis, discord_server: TestServer, fake: FakeDiscord
) -> None:
    fake.user = {"id": "800000000000000008", "username": "newcomer", "global_name": "New Shop"}
    off = await _api(api_with, app_redis, discord_server)
    text = await _callback(off.client, await _to_discord(off.client), status=403)
    assert "No vendor account is linked to this Discord account" in text
    assert await off.store.vendors.by_discord("800000000000000008") is None
    assert (await off.client.get("/dashboard/", allow_redirects=False)).status == 303

    on = await _api(api_with, app_redis, discord_server, discord_signup=True)
    assert await _callback(on.client, await _to_discord(on.client)) == "/dashboard/"
    vendor_id = await on.store.vendors.by_discord("800000000000000008")
    assert vendor_id is not None and vendor_id != on.vendor_id
    vendor = await on.store.vendors.get(vendor_id)
    assert vendor.name == "New Shop" and vendor.discord_id == "800000000000000008"
    page = await _signed_in_as(on.client)
    assert vendor_id in page and "New Shop" in page
    # Linked from the start: it may generate buyer keys from the dashboard.
    csrf = csrf_of(page)
    made = await on.client.post("/dashboard/projects", data={"csrf": csrf, "name": "Mine"})
    assert made.status == 200
    (project,) = await on.store.projects.list(vendor_id)
    keys = await on.client.post(
        f"/dashboard/projects/{project.project_id}/keys",
        data={"csrf": csrf, "amount": "1", "key_days": "1"},
        headers={"HX-Request": "true"},
    )
    assert keys.status == 200, await keys.text()
    # The same Discord user again: the same vendor, no second account.
    await on.client.post("/dashboard/signout", data={"csrf": csrf})
    assert await _callback(on.client, await _to_discord(on.client)) == "/dashboard/"
    assert vendor_id in await _signed_in_as(on.client)


async def test_link_from_settings_then_sign_in(
    api_with: ApiWith, app_redis: Redis, discord_server: TestServer, fake: FakeDiscord
) -> None:
    api = await _api(api_with, app_redis, discord_server)
    unlinked = await api.as_other("unlinked", discord_id=None)
    csrf = await sign_in(api.client, unlinked.api_key)
    settings = await _signed_in_as(api.client)
    assert "Link your Discord account" in settings
    # Generating keys needs the link (the contract's 403).
    pid = (await unlinked.project(name="p"))["project_id"]
    body = {"project_id": pid, "amount": 1}
    await unlinked.call("POST", "/api/vendor/keys/buyer", body, status=403)

    fake.user = {"id": "900000000000000009", "username": "owner"}
    assert await _callback(api.client, await _to_discord(api.client, csrf)) == (
        "/dashboard/settings"
    )
    assert "linked to <code>900000000000000009</code>" in await _signed_in_as(api.client)
    await unlinked.call("POST", "/api/vendor/keys/buyer", body)
    # Signed out, the vendor signs in with Discord.
    await api.client.post("/dashboard/signout", data={"csrf": csrf})
    assert await _callback(api.client, await _to_discord(api.client)) == "/dashboard/"
    assert unlinked.vendor_id in await _signed_in_as(api.client)


async def test_link_without_csrf_is_refused(
    api_with: ApiWith, app_redis: Redis, discord_server: TestServer
) -> None:
    api = await _api(api_with, app_redis, discord_server)
    await sign_in(api.client, api.api_key)
    resp = await api.client.post("/dashboard/oauth/discord/link", allow_redirects=False)
    assert resp.status == 403


async def test_account_linked_to_another_vendor_is_refused(
    api_with: ApiWith, app_redis: Redis, discord_server: TestServer, fake: FakeDiscord
) -> None:
    api = await _api(api_with, app_redis, discord_server)  # holds LINKED
    other = await api.as_other("other", discord_id=None)
    csrf = await sign_in(api.client, other.api_key)
    fake.user = {"id": LINKED, "username": "taken"}
    text = await _callback(api.client, await _to_discord(api.client, csrf), status=409)
    assert "already linked to another vendor account" in text
    assert (await other.store.vendors.get(other.vendor_id)).discord_id is None
    assert await api.store.vendors.by_discord(LINKED) == api.vendor_id


async def test_wrong_state_and_another_browser_are_refused(ada: Api, fake: FakeDiscord) -> None:
    api = ada
    callback = await _to_discord(api.client)
    q = parse_qs(urlsplit(callback).query)
    forged = callback.replace(q["state"][0], "x" + q["state"][0][1:])
    text = await _callback(api.client, forged, status=400)
    assert "unknown or expired state" in text
    # The right state, from a browser without the pre-auth cookie: refused, and used up.
    api.client.session.cookie_jar.clear_domain("127.0.0.1")
    text = await _callback(api.client, callback, status=400)
    assert "started in another browser" in text
    assert fake.refused == [] and len(fake.codes) == 1  # the code never reached Discord
    text = await _callback(api.client, callback, status=400)
    assert "unknown or expired state" in text
    assert (await api.client.get("/dashboard/", allow_redirects=False)).status == 303


async def test_replayed_code_is_refused(ada: Api, fake: FakeDiscord) -> None:
    api = ada
    first = await _to_discord(api.client)
    assert await _callback(api.client, first) == "/dashboard/"
    # The same callback again: its state is used up.
    text = await _callback(api.client, first, status=400)
    assert "unknown or expired state" in text
    # The used code under a fresh state: leaf7 asks, Discord refuses it.
    fresh = await _to_discord(api.client)
    code = parse_qs(urlsplit(first).query)["code"][0]
    replay = fresh.replace(parse_qs(urlsplit(fresh).query)["code"][0], code)
    text = await _callback(api.client, replay, status=400)
    assert "Discord refused the sign-in" in text
    assert fake.refused == ["unknown or used code"]


async def test_off_without_a_client_id(api: Api) -> None:
    assert (await api.client.get("/dashboard/oauth/discord/start")).status == 404
    assert (await api.client.get("/dashboard/oauth/discord/callback?state=x")).status == 404
    assert "Sign in with Discord" not in await (await api.client.get("/dashboard/signin")).text()


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"LEAF7_DISCORD_CLIENT_ID": "1"}, "go together"),
        ({"LEAF7_SIGNUP": "discord"}, "LEAF7_SIGNUP=discord needs"),
        ({"LEAF7_SIGNUP": "yes"}, "LEAF7_SIGNUP must be one of"),
        ({"LEAF7_DISCORD_OAUTH_BASE": "discord.com"}, "must be an http(s) URL"),
    ],
)
def test_configuration_is_checked(env: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(error)):
        Settings.from_env(env)


def test_configuration() -> None:
    assert Settings.from_env({}).discord_client_id is None
    s = Settings.from_env(
        {
            "LEAF7_DISCORD_CLIENT_ID": CLIENT_ID,
            "LEAF7_DISCORD_CLIENT_SECRET": CLIENT_SECRET,
            "LEAF7_SIGNUP": "discord",
            "LEAF7_DISCORD_OAUTH_BASE": "http://127.0.0.1:9/",
        }
    )
    assert s.discord_signup and s.discord_oauth_base == "http://127.0.0.1:9"
