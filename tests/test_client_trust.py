"""What a client's request may decide (issue 22): the executor's HWID header outranks the body,
a client's text reaches the vendor's Discord as data, the URLs leaf7 hands out never come from
request headers, and only a trusted proxy's X-Forwarded-Proto makes a request HTTPS."""

import dataclasses
import ipaddress
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

from service.app import create_app
from service.config import Settings
from service.webhooks import Deliverer, DelivererConfig
from tests.support.api import Api, Clock, execute, setup_key, store_of
from tests.support.hooks import hook_receiver
from tests.support.processes import Server, create_vendor, http, kill_valkeys

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


def verdict(data: dict[str, Any]) -> str:
    return str(data["code"])


# ---- 6. the executor's HWID wins ------------------------------------------------------------


async def test_a_body_hwid_does_not_pass_the_executors_lock(valkey_api: Api) -> None:
    api = valkey_api
    pid, kid = await setup_key(api)
    owner = {"Syn-Fingerprint": "HW-AAAA"}
    assert verdict(await execute(api, pid, kid, hwid=None, headers=owner)) == "KEY_VALID"
    assert (await api.active(kid))["hwid"] == "HW-AAAA"
    # Another machine with the shared key, writing the owner's HWID into the body.
    thief = {"Syn-Fingerprint": "HW-BBBB"}
    data = await execute(api, pid, kid, hwid="HW-AAAA", headers=thief)
    assert verdict(data) == "KEY_HWID_LOCKED"
    # ... or into a fingerprint header of its own next to the executor's: no HWID at all.
    both = {"X-Hwid": "HW-AAAA", **thief}
    assert verdict(await execute(api, pid, kid, hwid="HW-AAAA", headers=both)) == "HWID_MISSING"
    # The owner's executor passes whatever its body says; the binding never moved.
    assert verdict(await execute(api, pid, kid, hwid="other", headers=owner)) == "KEY_VALID"
    assert (await api.active(kid))["hwid"] == "HW-AAAA"
    # Without a fingerprint header the body's hwid is the HWID (loader.lua's gethwid()).
    pid2, kid2 = await setup_key(api)
    assert verdict(await execute(api, pid2, kid2, hwid="PC-1")) == "KEY_VALID"
    assert verdict(await execute(api, pid2, kid2, hwid="PC-2")) == "KEY_HWID_LOCKED"
    assert (await api.active(kid2))["hwid"] == "PC-1"


# ---- 7. Discord text is data ------------------------------------------------------------------


def unescaped(text: str, chars: str) -> list[str]:
    """The characters of ``chars`` in ``text`` that no backslash escapes (Discord Markdown)."""
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in chars:
            found.append(text[i])
        i += 1
    return found


async def test_a_clients_hwid_reaches_discord_as_text(
    aiohttp_server: Any, api_with: Any, real_redis: Any
) -> None:
    api: Api = await api_with(real_redis, webhook_allow=LOOPBACK)
    url, received = await hook_receiver(aiohttp_server)
    pid = (await api.project(webhook_url=url))["project_id"]
    [key] = await api.keys(pid)
    kid = key["key_id"]
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_VALID"
    evil = "a` [Verify here](https://evil.example/x) `b @everyone <@&123>"
    assert verdict(await execute(api, pid, kid, hwid=evil)) == "KEY_HWID_LOCKED"
    config = DelivererConfig(poll=0.05, backoff=0.2, max_attempts=2, timeout=5, allow=LOOPBACK)
    deliverer = Deliverer(api.store, config)
    try:
        assert await deliverer.run_once() == 2  # the redemption by the loader, the refusal
    finally:
        await deliverer.close()
    refused = received[1]["embeds"][0]
    values = {f["name"]: f["value"] for f in refused["fields"]}
    assert values["Bound HWID"] == "`pc-1`"
    hwid = values["HWID"]
    # Every character Discord would read as Markdown is escaped: no code span ends, no masked
    # or bare link forms, no mention; the text shown is the client's exactly.
    assert unescaped(hwid, "`[]()<>@:/*_~|") == []
    assert hwid.replace("\\", "") == evil
    assert unescaped(refused["description"], "`[]()<>@:/*_~|") == []
    # And no text of any webhook POST pings anyone.
    assert all(body["allowed_mentions"] == {"parse": []} for body in received)


# ---- 8. URLs from configuration only ------------------------------------------------------------


def get_text(url: str, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers)  # noqa: S310
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
        return resp.status, resp.read().decode()


FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "Forwarded": "host=evil"}


def test_urls_never_come_from_request_headers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    vendor = create_vendor(data_dir, "Acme", "123")
    server = Server(data_dir, args=["--workers", "2"])
    try:
        server.wait_ready()
        key = vendor["api_key"]
        status, project = http("POST", server.base + "/api/vendor/projects", {"name": "P"}, key)
        assert status == 201, project
        pid = project["project_id"]
        status, lua = get_text(f"{server.base}/api/loader/{pid}/loader.lua", FORGED)
        assert status == 200
        assert "evil" not in lua
        # Without LEAF7_PUBLIC_URL: the address leaf7 listens on.
        assert f'"{server.base}/api/loader/execute"' in lua
        assert f"{server.base}/api/loader/{pid}/loader.lua" in lua
        req = urllib.request.Request(  # noqa: S310
            f"{server.base}/api/vendor/projects/{pid}/integrations",
            data=json.dumps(
                {"provider": "sellix", "secret": "s" * 32, "products": {"p": {"key_days": 1}}}
            ).encode(),
            headers={**FORGED, "Authorization": f"Bearer {key}"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            made = json.loads(resp.read())
        assert made["url"] == f"{server.base}/api/hooks/{made['integration_id']}"
        assert server.terminate() == 0
        # The warning at start, once (by the parent, not by each worker).
        assert server.output().count("LEAF7_PUBLIC_URL is not set") == 1
    finally:
        server.kill()
        kill_valkeys(data_dir)

    public = Server(data_dir, env={"LEAF7_PUBLIC_URL": "https://keys.example.com/"})
    try:
        public.wait_ready()
        status, lua = get_text(f"{public.base}/api/loader/{pid}/loader.lua", FORGED)
        assert '"https://keys.example.com/api/loader/execute"' in lua and "evil" not in lua
        assert public.terminate() == 0
        assert "LEAF7_PUBLIC_URL is not set" not in public.output()
    finally:
        public.kill()
        kill_valkeys(data_dir)


async def test_the_dashboards_loader_line_ignores_the_host_header(api: Api) -> None:
    c = api.client
    form = await c.get("/dashboard/signin")
    data = {"csrf": csrf_of(await form.text()), "api_key": api.api_key}
    signed_in = await c.post("/dashboard/signin", data=data, allow_redirects=False)
    assert signed_in.status == 303
    pid = (await api.project())["project_id"]
    page = await c.get(f"/dashboard/projects/{pid}/script", headers={"Host": "evil.example"})
    text = await page.text()
    assert page.status == 200 and "evil.example" not in text
    assert str(c.make_url(f"/api/loader/{pid}/loader.lua")) in text


# ---- 10. Secure behind a proxy ----------------------------------------------------------------


async def session_cookie(client: Any, headers: dict[str, str]) -> str:
    """The l7_session Set-Cookie of a sign-in whose requests carry ``headers``."""
    _vendor_id, api_key = await store_of(client).vendors.create("v", "1")
    form = await client.get("/dashboard/signin", headers=headers)
    token = csrf_of(await form.text())
    resp = await client.post(
        "/dashboard/signin",
        data={"csrf": token, "api_key": api_key},
        # (A Secure cookie is not sent back over http by the client: sent by hand.)
        headers={**headers, "Cookie": f"l7_signin={token}"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"].startswith("/dashboard")
    cookies: list[str] = resp.headers.getall("Set-Cookie")
    return next(h for h in cookies if h.startswith("l7_session="))


def is_secure(cookie: str) -> bool:
    return "secure" in {a.strip().split("=")[0].lower() for a in cookie.split(";")}


async def test_forwarded_https_from_a_trusted_proxy_makes_cookies_secure(
    aiohttp_client: Any, real_redis: Any, clock: Clock, settings: Settings
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    proxied = dataclasses.replace(settings, trusted_proxies=LOOPBACK)  # the test client's peer
    client = await aiohttp_client(create_app(proxied, redis=real_redis, clock=clock))
    assert is_secure(await session_cookie(client, https))
    assert not is_secure(await session_cookie(client, {}))
    # The right-most value is the proxy's; one the client put left of it is not believed.
    assert not is_secure(await session_cookie(client, {"X-Forwarded-Proto": "https, http"}))
    # From a peer that is not a trusted proxy the header means nothing.
    other = dataclasses.replace(settings, trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    client = await aiohttp_client(create_app(other, redis=real_redis, clock=clock))
    assert not is_secure(await session_cookie(client, https))
    client = await aiohttp_client(create_app(settings, redis=real_redis, clock=clock))
    assert not is_secure(await session_cookie(client, https))
