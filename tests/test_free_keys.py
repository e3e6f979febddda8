"""Free keys through ad checkpoints (docs/free-keys.md), over HTTP against local fakes of the
providers (tests/support/freeproviders.py): the settings, the loader's KEY_REQUIRED, the whole
flow to a key that runs with L7_IsPremium false, and every bypass refused. "Another IP" is an
X-Forwarded-For the app believes (LEAF7_TRUSTED_PROXIES=127.0.0.1)."""

import ipaddress
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from store import keyspace
from tests.support.api import Api, ApiWith, Clock, execute
from tests.support.freeproviders import (
    TURNSTILE_SECRET,
    TURNSTILE_SITE_KEY,
    Fakes,
    settings_for,
    three_checkpoints,
)

SOURCE = 'print("premium:", L7_IsPremium)'
UA = "Mozilla/5.0 (Linux; Android 14) Test"


@pytest.fixture
async def fakes(aiohttp_server: Any) -> tuple[Fakes, str]:
    fake = Fakes()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def fk(
    api_with: ApiWith, redis_client: Redis, fakes: tuple[Fakes, str]
) -> "AsyncIterator[FreeWorld]":
    fake, base = fakes
    api = await api_with(
        redis_client,
        trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
        free_keys_timeout=1.0,
        **settings_for(base),
    )
    project = await api.project(name="Blox Hub", description="Free script, premium for buyers")
    pid = project["project_id"]
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": SOURCE})
    world = FreeWorld(api, pid, fake, base)
    yield world
    for p in world.players:
        await p.session.close()


class Player:
    """One browser: its own cookies, IP (X-Forwarded-For) and User-Agent."""

    def __init__(self, world: "FreeWorld", ip: str, ua: str = UA) -> None:
        self.world = world
        self.ip = ip
        self.ua = ua
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        world.players.append(self)

    def url(self, path: str) -> str:
        return str(self.world.api.client.make_url(path))

    async def get(self, path: str) -> tuple[int, str, str]:
        async with self.session.get(
            self.url(path),
            allow_redirects=False,
            headers={"X-Forwarded-For": self.ip, "User-Agent": self.ua},
        ) as resp:
            return resp.status, resp.headers.get("Location", ""), await resp.text()

    async def post(self, path: str, form: dict[str, str]) -> tuple[int, str, str]:
        async with self.session.post(
            self.url(path),
            data=form,
            allow_redirects=False,
            headers={"X-Forwarded-For": self.ip, "User-Agent": self.ua},
        ) as resp:
            return resp.status, resp.headers.get("Location", ""), await resp.text()


class FreeWorld:
    def __init__(self, api: Api, pid: str, fake: Fakes, base: str) -> None:
        self.api = api
        self.pid = pid
        self.fake = fake
        self.base = base
        self.players: list[Player] = []

    @property
    def clock(self) -> Clock:
        return self.api.store.core.clock  # type: ignore[return-value]

    async def configure(self, **changes: Any) -> dict[str, Any]:
        body = {"enabled": True, "checkpoints": three_checkpoints(self.base), **changes}
        out = await self.api.call("PUT", f"/api/vendor/projects/{self.pid}/free_keys", body)
        # The vendor pastes each return URL (and LootLabs' postback URL) at the provider.
        for c in out["checkpoints"]:
            self.fake.destinations[c["provider"]] = c["return_url"]
            if "postback_url" in c:
                self.fake.postback_url = c["postback_url"]
        return out  # type: ignore[no-any-return]

    async def getkey_url(self, hwid: str) -> str:
        resp = await self.api.client.post(
            "/api/loader/getkey", json={"project_id": self.pid, "hwid": hwid}
        )
        assert resp.status == 200, await resp.text()
        url: str = (await resp.json())["url"]
        return url

    def path_of(self, url: str) -> str:
        return url[url.index("/getkey/") :]


def machine_of(path: str) -> str:
    return path.rpartition("id=")[2]


def message(html: str) -> str:
    found = re.search(r'<div id="message"[^>]*>(.*?)</div>', html, re.S)
    assert found, html
    return found.group(1).strip()


async def start(world: FreeWorld, player: Player, page: str) -> str:
    """The player presses Start: 303 to checkpoint 1's link."""
    status, location, body = await player.post(
        f"/getkey/{world.pid}/start", {"id": machine_of(page), "mode": "new"}
    )
    assert status == 303, body
    return location


async def pass_checkpoint(world: FreeWorld, player: Player, k: int, link: str) -> str:
    """The provider's page (the fake), then back to leaf7: the location after the return."""
    world.clock.advance(11)  # longer than min_seconds
    async with player.session.get(link, headers={"X-Forwarded-For": player.ip}) as resp:
        html = await resp.text()
    target = re.search(r'href="([^"]+)"', html)
    assert target, html
    status, location, body = await player.get(world.path_of(target.group(1)))
    assert status == 303, (k, status, body)
    return location


async def next_link(world: FreeWorld, player: Player, page: str) -> str:
    status, location, body = await player.post(
        f"/getkey/{world.pid}/next", {"id": machine_of(page)}
    )
    assert status == 303, body
    return location


async def get_key(world: FreeWorld, player: Player, hwid: str) -> tuple[str, str]:
    """Every checkpoint of the three: (the key, the page)."""
    page = world.path_of(await world.getkey_url(hwid))
    link = await start(world, player, page)
    for k in range(3):
        after = await pass_checkpoint(world, player, k, link)
        if k < 2:
            assert after == page
            link = await next_link(world, player, page)
    assert after == page + "&done=ISSUED"
    status, _, html = await player.get(after)
    assert status == 200
    key = re.search(r'<input id="key" value="([^"]+)"', html)
    assert key, html
    return key.group(1), html


# ---- settings --------------------------------------------------------------------------


async def test_settings_answer_urls_and_never_secrets(fk: FreeWorld) -> None:
    pid = fk.pid
    empty = await fk.api.call("GET", f"/api/vendor/projects/{pid}/free_keys")
    assert empty["enabled"] is False and empty["checkpoints"] == []
    assert (empty["key_hours"], empty["keys_per_day"], empty["min_seconds"]) == (24, 1, 10)
    out = await fk.configure(turnstile={"site_key": TURNSTILE_SITE_KEY, "secret": TURNSTILE_SECRET})
    text = str(out)
    assert "lv-publisher-token" not in text and TURNSTILE_SECRET not in text
    wi, lv, ll = out["checkpoints"]
    base = str(fk.api.client.make_url(f"/getkey/{pid}"))
    assert wi["return_url"] == f"{base}/return/0?token={{TOKEN}}"
    assert lv["return_url"] == f"{base}/return/1" and lv["has_token"] is True
    assert ll["postback_url"].startswith(f"{base}/postback/") and "postback_url" not in wi
    assert out["turnstile"] == {"site_key": TURNSTILE_SITE_KEY}
    # The same settings again without the secrets: kept, and the postback URL does not move.
    body = {"enabled": True, "checkpoints": three_checkpoints(fk.base)}
    body["checkpoints"][1].pop("token")
    body["turnstile"] = {"site_key": TURNSTILE_SITE_KEY}
    again = await fk.api.call("PUT", f"/api/vendor/projects/{pid}/free_keys", body)
    assert again["checkpoints"] == out["checkpoints"]
    # A Linkvertise checkpoint where no token is stored (the third: none there): 422, nothing
    # written.
    workink, linkvertise = body["checkpoints"][0], body["checkpoints"][1]
    lonely = {"enabled": True, "checkpoints": [workink, workink, linkvertise]}
    bad = await fk.api.call("PUT", f"/api/vendor/projects/{pid}/free_keys", lonely, status=409)
    assert "checkpoints[2].token" in bad["detail"]
    assert await fk.api.call("GET", f"/api/vendor/projects/{pid}/free_keys") == again
    no_id = {"checkpoints": [{"provider": "workink", "link": "https://work.ink/x"}]}
    bad = await fk.api.call("PUT", f"/api/vendor/projects/{pid}/free_keys", no_id, status=422)
    assert "link_id" in bad["detail"]
    no_secret = {**body, "turnstile": {"site_key": "k"}}
    no_secret["checkpoints"] = no_secret["checkpoints"][:1]
    await fk.api.call("PUT", f"/api/vendor/projects/{pid}/free_keys", no_secret)  # kept
    # The Linkvertise token went with its checkpoint: asked for again.
    await fk.api.call("PUT", f"/api/vendor/projects/{pid}/free_keys", body, status=409)
    for wrong in ({"checkpoints": []}, {"checkpoints": [{"provider": "x", "link": "https://a"}]}):
        await fk.api.call("PUT", f"/api/vendor/projects/{pid}/free_keys", wrong, status=422)
    other = await fk.api.as_other()
    await other.call("GET", f"/api/vendor/projects/{pid}/free_keys", status=404)
    await other.call("PUT", f"/api/vendor/projects/{pid}/free_keys", body, status=404)


# ---- the whole flow ----------------------------------------------------------------------


async def test_loader_key_required_to_a_free_key_that_runs(fk: FreeWorld) -> None:
    await fk.configure()
    verdict = await execute(fk.api, fk.pid, "", hwid=None, headers={"Krnl-Hwid": "pc-1"})
    assert verdict["code"] == "KEY_REQUIRED" and verdict["valid"] is False
    url = verdict["getkey_url"]
    assert "pc-1" not in url and re.fullmatch(r".*/getkey/[0-9a-f-]{36}\?id=[0-9a-f]{32}", url)
    # The header outranks the body, as for checks; the same machine, the same URL.
    resp = await fk.api.client.post(
        "/api/loader/getkey",
        json={"project_id": fk.pid, "hwid": "someone-else"},
        headers={"Krnl-Hwid": "pc-1"},
    )
    assert (await resp.json())["url"] == url
    assert await fk.getkey_url("pc-2") != url

    player = Player(fk, "203.0.113.7")
    status, _, html = await player.get(fk.path_of(url))
    assert status == 200 and "Blox Hub" in html and "premium for buyers" in html
    assert 'id="start"' in html
    key, html = await get_key(fk, player, "pc-1")
    assert "Expires" in html and 'class="copy"' in html
    ok = await execute(fk.api, fk.pid, key, hwid="pc-1")
    assert ok["code"] == "KEY_VALID"
    assert ok["script"] == "local L7_IsPremium = false\n" + SOURCE
    # The key was made bound to the machine that asked: another one is KEY_HWID_LOCKED.
    other = await execute(fk.api, fk.pid, key, hwid="pc-2")
    assert other["code"] == "KEY_HWID_LOCKED"
    # A sold key of the same project is premium.
    [paid] = await fk.api.keys(fk.pid)
    sold = await execute(fk.api, fk.pid, paid["key_id"], hwid="pc-9")
    assert sold["script"] == "local L7_IsPremium = true\n" + SOURCE
    # Listings and exports tell them apart.
    rows = {r["key_id"]: r for r in await fk.api.call("GET", "/api/vendor/keys/active")}
    assert rows[key]["type"] == "free" and rows[paid["key_id"]]["type"] == "paid"
    assert rows[key]["hwid"] == "pc-1"
    resp = await fk.api.client.get(f"/api/vendor/export?project_id={fk.pid}", headers=fk.api.auth)
    lines = (await resp.text()).splitlines()
    assert any(f'"key_id":"{key}"' in x and '"key_type":"free"' in x for x in lines), lines
    # The machine sees its live key again (not a new one), and a second key the same day is
    # refused in plain words.
    status, _, html = await player.get(fk.path_of(url))
    assert f'value="{key}"' in html and 'id="start"' not in html
    # The funnel counted it all.
    days = await fk.api.call("GET", f"/api/vendor/analytics/free_keys?project_id={fk.pid}&days=2")
    today = days[-1]
    assert today["keys_issued"] == 1 and today["started"] == [1, 1, 1]
    assert today["completed"] == [1, 1, 1] and today["page_views"] >= 3


async def test_a_second_key_the_same_day_is_refused(fk: FreeWorld) -> None:
    fk.clock.freeze()  # 01:00 UTC of some day: the day does not change under the test
    assert fk.clock.frozen is not None
    fk.clock.offset = (fk.clock.frozen // 86400 + 1) * 86400 + 3600 - fk.clock.frozen
    await fk.configure(key_hours=1)
    player = Player(fk, "203.0.113.8")
    key, _ = await get_key(fk, player, "pc-1")
    fk.clock.advance(2 * 3600)  # the key expired; the same UTC day: keys_per_day holds
    assert (await execute(fk.api, fk.pid, key, hwid="pc-1"))["code"] == "KEY_REQUIRED"
    page = fk.path_of(await fk.getkey_url("pc-1"))
    status, _, html = await player.post(
        f"/getkey/{fk.pid}/start", {"id": machine_of(page), "mode": "new"}
    )
    assert status == 429 and "Come back tomorrow" in message(html)
    fk.clock.advance(86400)  # tomorrow: a new key
    key2, _ = await get_key(fk, Player(fk, "203.0.113.8"), "pc-1")
    assert key2 != key
    days = await fk.api.call("GET", f"/api/vendor/analytics/free_keys?project_id={fk.pid}&days=2")
    assert days[0]["refusals"] == {"DAILY_LIMIT": 1} and days[0]["keys_issued"] == 1


# ---- bypasses --------------------------------------------------------------------------


async def _at_first_return(fk: FreeWorld, ip: str = "203.0.113.9") -> tuple[Player, str, str]:
    """A player who started checkpoint 1 (Work.ink): (player, page, the return path with a
    genuine token minted for them)."""
    await fk.configure()
    player = Player(fk, ip)
    page = fk.path_of(await fk.getkey_url("pc-1"))
    await start(fk, player, page)
    token = fk.fake.workink_token("4242", ip)
    return player, page, f"/getkey/{fk.pid}/return/0?token={token}"


async def test_a_return_sooner_than_min_seconds_is_refused(fk: FreeWorld) -> None:
    player, page, back = await _at_first_return(fk)
    fk.clock.advance(5)
    status, _, html = await player.get(back)
    assert status == 429 and "came back too quickly" in message(html)
    # Continue starts it again; a full visit then passes.
    link = await next_link(fk, player, page)
    assert await pass_checkpoint(fk, player, 0, link) == page


async def test_a_reused_token_is_refused(fk: FreeWorld) -> None:
    player, page, back = await _at_first_return(fk)
    fk.clock.advance(11)
    status, location, _ = await player.get(back)
    assert status == 303 and location == page
    # The same token again, at the next checkpoint's turn or another player's.
    token = back.rpartition("=")[2]
    fk.fake.workink_tokens[token] = {"linkId": "4242", "byIp": "198.51.100.1"}  # it forgot
    other = Player(fk, "198.51.100.1")
    page2 = fk.path_of(await fk.getkey_url("pc-5"))
    await start(fk, other, page2)
    fk.clock.advance(11)
    status, _, html = await other.get(back)
    assert status == 403 and "already used" in message(html)


async def test_a_forged_token_is_refused(fk: FreeWorld) -> None:
    player, _, _ = await _at_first_return(fk)
    fk.clock.advance(11)
    for forged in ("not-a-token-of-work-ink", "../../etc", ""):
        status, _, html = await player.get(f"/getkey/{fk.pid}/return/0?token={forged}")
        assert status == 403 and "did not confirm" in message(html)
    # A token of another link of the same provider: refused too.
    other_link = fk.fake.workink_token("9999", "203.0.113.9")
    status, _, html = await player.get(f"/getkey/{fk.pid}/return/0?token={other_link}")
    assert status == 403 and "That was not this script" in message(html)
    # A Linkvertise hash nobody issued.
    status, _, html = await player.get(f"/getkey/{fk.pid}/return/1?hash={'a' * 64}")
    assert status == 403


async def test_a_skipped_step_is_refused(fk: FreeWorld) -> None:
    player, _, _ = await _at_first_return(fk)
    fk.clock.advance(11)
    status, _, html = await player.get(
        f"/getkey/{fk.pid}/return/1?hash={fk.fake.linkvertise_hash()}"
    )
    assert status == 403 and "go in order" in message(html)
    # And the last one straight away (a LootLabs postback forged for nothing).
    status, _, html = await player.get(f"/getkey/{fk.pid}/return/2")
    assert status == 403 and "go in order" in message(html)
    # Without any session at all.
    status, _, html = await Player(fk, "203.0.113.9").get(f"/getkey/{fk.pid}/return/0?token=x")
    assert status == 403 and "session has ended" in message(html)


async def test_another_ip_is_refused(fk: FreeWorld) -> None:
    player, _, back = await _at_first_return(fk)
    fk.clock.advance(11)
    player.ip = "192.0.2.50"  # the same browser, from elsewhere (a bypass service)
    status, _, html = await player.get(back)
    assert status == 403 and "internet address changed" in message(html)
    # Work.ink saw the visit from another IP than the session's: refused too.
    player.ip = "203.0.113.9"
    token = fk.fake.workink_token("4242", "192.0.2.99")
    status, _, html = await player.get(f"/getkey/{fk.pid}/return/0?token={token}")
    assert status == 403
    # Another browser of the same IP: refused.
    player.ua = "curl/8"
    token = fk.fake.workink_token("4242", "203.0.113.9")
    status, _, html = await player.get(f"/getkey/{fk.pid}/return/0?token={token}")
    assert status == 403 and "not the browser you started in" in message(html)


async def test_lootlabs_postback_once_and_secret(fk: FreeWorld) -> None:
    out = await fk.configure()
    postback = out["checkpoints"][2]["postback_url"]
    path = postback[postback.index("/getkey/") :]
    q = "click_id=abc&ip=203.0.113.9&unique_id=u1"
    resp = await fk.api.client.get(f"{path}?{q}")
    assert resp.status == 200 and await resp.text() == "ok"
    resp = await fk.api.client.get(f"{path}?{q}")
    assert resp.status == 200 and await resp.text() == "duplicate"
    resp = await fk.api.client.get(f"/getkey/{fk.pid}/postback/{'0' * 32}?{q}")
    assert resp.status == 404
    resp = await fk.api.client.get(f"{path}?click_id=abc&ip=nope&unique_id=u2")
    assert resp.status == 400


async def test_a_provider_that_times_out_gives_a_readable_page(fk: FreeWorld) -> None:
    player, page, back = await _at_first_return(fk)
    fk.clock.advance(11)
    fk.fake.slow = 5.0  # past LEAF7_FREE_KEYS_TIMEOUT (1 s here)
    status, _, html = await player.get(back)
    assert status == 503 and "not answering right now" in message(html)
    assert "<h1>Blox Hub</h1>" in html
    fk.fake.slow = 0.0  # back: the same token still passes
    status, location, _ = await player.get(back)
    assert status == 303 and location == page


async def test_turnstile_before_the_first_checkpoint(fk: FreeWorld) -> None:
    await fk.configure(turnstile={"site_key": TURNSTILE_SITE_KEY, "secret": TURNSTILE_SECRET})
    player = Player(fk, "203.0.113.10")
    page = fk.path_of(await fk.getkey_url("pc-1"))
    status, _, html = await player.get(page)
    assert 'data-sitekey="site-key-1"' in html
    form = {"id": machine_of(page), "mode": "new"}
    status, _, html = await player.post(f"/getkey/{fk.pid}/start", form)
    assert status == 403 and "human check" in message(html)
    fk.fake.turnstile_answers.add("solved")
    status, location, _ = await player.post(
        f"/getkey/{fk.pid}/start", {**form, "cf-turnstile-response": "solved"}
    )
    assert status == 303 and location.endswith("/link/workink")


async def test_sessions_per_ip_are_limited(
    api_with: ApiWith, redis_client: Redis, fakes: tuple[Fakes, str]
) -> None:
    fake, base = fakes
    api = await api_with(
        redis_client,
        trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
        free_keys_sessions=2,
        **settings_for(base),
    )
    pid = (await api.project())["project_id"]
    world = FreeWorld(api, pid, fake, base)
    try:
        await world.configure(keys_per_day=10)
        # An IPv6 /64 counts as one client.
        for i in range(3):
            player = Player(world, f"2001:db8:1:2::{i + 1}")
            page = world.path_of(await world.getkey_url(f"pc-{i}"))
            status, _, html = await player.post(
                f"/getkey/{pid}/start", {"id": machine_of(page), "mode": "new"}
            )
            if i < 2:
                assert status == 303
            else:
                assert status == 429 and "Wait an hour" in message(html)
    finally:
        for p in world.players:
            await p.session.close()


async def test_getkey_calls_are_limited_per_client(
    api_with: ApiWith, redis_client: Redis, fakes: tuple[Fakes, str]
) -> None:
    """Each ``POST /api/loader/getkey`` may write a machine record: an anonymous client gets
    no more of them than loader checks (LEAF7_RATE_EXECUTE per window, per project and IP)."""
    fake, base = fakes
    api = await api_with(
        redis_client,
        trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
        rate_execute=3,
        **settings_for(base),
    )
    pid = (await api.project())["project_id"]
    world = FreeWorld(api, pid, fake, base)
    await world.configure()

    async def getkey(hwid: str, ip: str) -> tuple[int, Any]:
        resp = await api.client.post(
            "/api/loader/getkey",
            json={"project_id": pid, "hwid": hwid},
            headers={"X-Forwarded-For": ip},
        )
        return resp.status, await resp.json()

    for i in range(3):
        assert (await getkey(f"pc-{i}", "203.0.113.5"))[0] == 200
    status, body = await getkey("pc-9", "203.0.113.5")
    assert (status, body) == (429, {"detail": "Too many requests"})
    machines = await redis_client.keys(keyspace.free_machine(pid, "*"))
    assert len(machines) == 3  # the refused call wrote nothing
    assert (await getkey("pc-9", "198.51.100.1"))[0] == 200  # another client is not held
