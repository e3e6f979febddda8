"""Local fakes of the free-key providers (docs/free-keys.md), one aiohttp app: Work.ink's token
API, Linkvertise's anti-bypass API, a LootLabs link that calls the postback, Cloudflare
Turnstile (siteverify and a tiny api.js). Each also serves the vendor's "link": it plays the
provider's page, then sends the browser to the return URL the way the provider would.

``slow``: every API answer waits that long first (a provider outage)."""

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

LINKVERTISE_TOKEN = "lv-publisher-token"
TURNSTILE_SECRET = "ts-secret"
TURNSTILE_SITE_KEY = "site-key-1"


@dataclass
class Fakes:
    workink_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    linkvertise_hashes: set[str] = field(default_factory=set)
    turnstile_answers: set[str] = field(default_factory=set)
    postback_calls: list[dict[str, str]] = field(default_factory=list)
    # where each fake link sends the player back (the vendor pastes return_url there)
    destinations: dict[str, str] = field(default_factory=dict)
    postback_url: str = ""
    slow: float = 0.0
    calls: int = 0

    def workink_token(self, link_id: str, ip: str) -> str:
        token = secrets.token_urlsafe(16)
        self.workink_tokens[token] = {"linkId": link_id, "byIp": ip}
        return token

    def linkvertise_hash(self) -> str:
        value = secrets.token_hex(32)
        self.linkvertise_hashes.add(value)
        return value

    async def _wait(self) -> None:
        self.calls += 1
        if self.slow:
            await asyncio.sleep(self.slow)

    # ---- the APIs leaf7 calls ---------------------------------------------------------

    async def workink_is_valid(self, request: web.Request) -> web.Response:
        await self._wait()
        token = request.match_info["token"]
        info = self.workink_tokens.get(token)
        if info is not None and request.query.get("deleteToken") == "1":
            del self.workink_tokens[token]
        if info is None:
            return web.json_response({"valid": False})
        return web.json_response({"valid": True, "info": info})

    async def linkvertise_check(self, request: web.Request) -> web.Response:
        await self._wait()
        q = request.query
        ok = q.get("token") == LINKVERTISE_TOKEN and q.get("hash") in self.linkvertise_hashes
        if ok:
            self.linkvertise_hashes.discard(q["hash"])
        return web.Response(text="TRUE" if ok else "FALSE")

    async def turnstile_verify(self, request: web.Request) -> web.Response:
        await self._wait()
        form = await request.post()
        answer = str(form.get("response", ""))
        ok = form.get("secret") == TURNSTILE_SECRET and answer in self.turnstile_answers
        self.turnstile_answers.discard(answer)
        return web.json_response({"success": ok})

    async def turnstile_js(self, request: web.Request) -> web.Response:
        # Fills every widget's hidden answer, as Cloudflare's script does once solved.
        answer = secrets.token_urlsafe(12)
        self.turnstile_answers.add(answer)
        js = (
            "document.querySelectorAll('.cf-turnstile').forEach(function (el) {"
            "var i = document.createElement('input'); i.type = 'hidden';"
            f"i.name = 'cf-turnstile-response'; i.value = '{answer}'; el.appendChild(i);"
            "el.setAttribute('data-solved', '1'); });"
        )
        return web.Response(text=js, content_type="application/javascript")

    # ---- the vendor's links (the provider's page, then back to leaf7) --------------------

    async def link(self, request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        dest = self.destinations[provider]
        # (the player's address as the provider sees it: tests without a browser say it)
        ip = request.headers.get("X-Forwarded-For") or request.remote or ""
        if provider == "workink":
            target = dest.replace("{TOKEN}", self.workink_token("4242", ip))
        elif provider == "linkvertise":
            target = f"{dest}?hash={self.linkvertise_hash()}"
        else:  # lootlabs: its server calls the postback first
            params = {
                "click_id": request.query["click_id"],
                "ip": ip,
                "unique_id": secrets.token_hex(8),
            }
            self.postback_calls.append(params)
            async with (
                aiohttp.ClientSession() as session,
                session.get(self.postback_url, params=params) as resp,
            ):
                assert resp.status == 200, await resp.text()
            target = dest
        html = f'<!doctype html><title>ad</title><a id="done" href="{target}">Continue</a>'
        return web.Response(text=html, content_type="text/html")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/workink/token/isValid/{token}", self.workink_is_valid)
        app.router.add_post("/linkvertise/anti_bypassing", self.linkvertise_check)
        app.router.add_post("/turnstile/siteverify", self.turnstile_verify)
        app.router.add_get("/turnstile/api.js", self.turnstile_js)
        app.router.add_get("/link/{provider}", self.link)
        return app


def settings_for(base: str) -> dict[str, Any]:
    """The leaf7 settings that point at the fakes served at ``base``."""
    return {
        "workink_api": f"{base}/workink",
        "linkvertise_api": f"{base}/linkvertise",
        "turnstile_api": f"{base}/turnstile",
    }


def env_for(base: str) -> dict[str, str]:
    return {
        "LEAF7_WORKINK_API": f"{base}/workink",
        "LEAF7_LINKVERTISE_API": f"{base}/linkvertise",
        "LEAF7_TURNSTILE_API": f"{base}/turnstile",
    }


def three_checkpoints(base: str) -> list[dict[str, Any]]:
    return [
        {"provider": "workink", "link": f"{base}/link/workink", "link_id": "4242"},
        {"provider": "linkvertise", "link": f"{base}/link/linkvertise", "token": LINKVERTISE_TOKEN},
        {"provider": "lootlabs", "link": f"{base}/link/lootlabs"},
    ]
