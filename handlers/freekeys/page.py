"""Free keys, the player's side: the get-key page (Jinja2, the dashboard's CSP and headers),
the start of each checkpoint, the return from it, and LootLabs postbacks.

The session lives in a cookie (``l7_getkey``, path ``/getkey/<project_id>``) naming a
session hash bound to the client's IP and a digest of its User-Agent; every step is one
script (store/freekeys.py). Each refusal is a page that says what to do next."""

import hashlib
import hmac
import ipaddress
import secrets
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from handlers import ids
from handlers.appkeys import SETTINGS, store
from handlers.clientip import client_ip, rate_subject
from handlers.dashboard.base import SECURITY_HEADERS, secure
from handlers.freekeys.api import settings_of
from handlers.freekeys.links import MACHINE_ID
from handlers.freekeys.providers import PROVIDERS, ProviderDown, turnstile
from handlers.freekeys.providers.base import HTTP, Checkpoint, plain_token
from store.errors import ProjectNotFound
from store.freekeys import FreeState, Outcome
from store.models import iso

COOKIE = "l7_getkey"
SESSION_WINDOW = 3600  # LEAF7_FREE_KEYS_SESSIONS counts sessions per client per hour

# Why a step was refused, in words a player understands, and what to do next.
REFUSALS: dict[str, tuple[int, str]] = {
    "NOT_FREE": (404, "This script does not give free keys right now."),
    "UNKNOWN_MACHINE": (
        404,
        "This link did not come from your game. Run the script again in your executor: it "
        "copies a fresh link to your clipboard.",
    ),
    "NO_KEY": (409, "Your key has expired: get a new one with the checkpoints below."),
    "NO_EXTEND": (409, "This key cannot be extended any more. Get a new one once it expires."),
    "DAILY_LIMIT": (
        429,
        "This machine already got its free keys for today. Come back tomorrow (the day "
        "changes at 00:00 UTC).",
    ),
    "IP_LIMIT": (
        429,
        "Too many key sessions were started from your network in the last hour. Wait an hour, "
        "then open the link again.",
    ),
    "NO_SESSION": (
        403,
        "Your session has ended (or this browser blocks cookies). Open the link the script "
        "gave you again, in this browser, and start from the first checkpoint.",
    ),
    "OTHER_IP": (
        403,
        "Your internet address changed since you started (a VPN, or mobile data?). Use one "
        "connection and start again from the first checkpoint.",
    ),
    "OTHER_BROWSER": (
        403,
        "This is not the browser you started in. Start again from the first checkpoint in "
        "one browser.",
    ),
    "ORDER": (
        403,
        "Checkpoints go in order, each started from this page. Press Continue to start the "
        "next one.",
    ),
    "DONE": (409, "Every checkpoint is done already."),
    "TOO_FAST": (
        429,
        "You came back too quickly: the checkpoint was not completed. Press Continue and "
        "complete it on the provider's page.",
    ),
    "REUSED": (
        403,
        "That checkpoint link was already used. Press Continue to pass the checkpoint again.",
    ),
    "FORGED": (
        403,
        "The provider did not confirm this checkpoint. Press Continue and complete it on the "
        "provider's page (a bypass site's link does not work here).",
    ),
    "WRONG_LINK": (
        403,
        "That was not this script's checkpoint. Press Continue to open the right one.",
    ),
    "NO_POSTBACK": (
        409,
        "LootLabs has not confirmed this checkpoint yet. Wait a few seconds and reload this "
        "page, or press Continue to pass it again.",
    ),
    "POSTBACK_IP": (
        403,
        "LootLabs saw another internet address than yours (a VPN?). Use one connection and "
        "press Continue to pass the checkpoint again.",
    ),
    "TURNSTILE": (403, "The human check did not pass. Do it again, then press Start."),
    "PROVIDER_DOWN": (
        503,
        "The checkpoint provider is not answering right now. Nothing is lost: wait a minute "
        "and reload this page.",
    ),
}
NOTICES = {
    "ISSUED": "Done! Here is your key.",
    "EXTENDED": "Done! Your key was extended.",
    "HAS_KEY": "This machine already has a live key: here it is.",
}


def _origin(url: str) -> str:
    u = URL(url)
    return f"{u.scheme}://{u.raw_authority}"


def _headers(request: web.Request, turnstile_on: bool, links: list[str]) -> dict[str, str]:
    """The dashboard's headers; the CSP also lets the forms' redirects reach the checkpoint
    links (form-action covers a form's redirects) and Turnstile's widget load."""
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    targets = " ".join(sorted({_origin(link) for link in links}))
    if targets:
        csp = csp.replace("form-action 'self'", f"form-action 'self' {targets}")
    if turnstile_on:
        origin = _origin(request.app[HTTP].turnstile)
        csp = csp.replace("script-src 'self'", f"script-src 'self' {origin}")
        csp = csp.replace("connect-src 'self'", f"connect-src 'self' {origin}")
        csp += f"; frame-src {origin}"
    return {**SECURITY_HEADERS, "Content-Security-Policy": csp, "Cache-Control": "no-store"}


def _browser(request: web.Request) -> str:
    ua = request.headers.get("User-Agent", "")
    return hashlib.sha256(ua.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _project_id(request: web.Request) -> str:
    value = request.match_info["project_id"]
    if not ids.PROJECT_ID.valid(value):
        raise ProjectNotFound
    return value


def _checkpoints(state: FreeState) -> list[Checkpoint]:
    s = settings_of(state.config)
    if s is None:
        return []
    return [
        Checkpoint(
            provider=c.provider,
            link=c.link,
            link_id=getattr(c, "link_id", None),
            secret=state.secrets.get(f"secret:{k}"),
        )
        for k, c in enumerate(s.checkpoints)
    ]


class _Page:
    """Everything one request of the page needs: the project, its settings, the session."""

    def __init__(self, request: web.Request, project_id: str, state: FreeState) -> None:
        self.request = request
        self.project_id = project_id
        self.state = state
        self.settings = settings_of(state.config)
        self.checkpoints = _checkpoints(state)
        self.ip = client_ip(request)
        self.browser = _browser(request)

    @property
    def on(self) -> bool:
        return self.state.enabled and self.settings is not None and bool(self.checkpoints)

    async def render(
        self,
        machine_id: str | None,
        *,
        message: str = "",
        error: bool = False,
        status: int = 200,
    ) -> web.Response:
        s = store(self.request)
        ctx: dict[str, Any] = {
            "project_id": self.project_id,
            "name": self.state.name or "Get a key",
            "description": self.state.description,
            "message": message,
            "error": error,
            "machine_id": machine_id or "",
            "key": None,
            "steps": [],
            "in_session": False,
            "can_start": False,
            "current": 0,
            "key_hours": self.settings.key_hours if self.settings else 0,
            "turnstile_script": None,
            "turnstile_site_key": None,
        }
        settings = self.settings
        turnstile_on = bool(self.on and settings and settings.turnstile)
        if self.on and settings is not None and machine_id:
            machine = await s.freekeys.machine(self.project_id, machine_id)
            if machine is None:
                if not message:
                    status, ctx["message"] = REFUSALS["UNKNOWN_MACHINE"]
                    ctx["error"] = True
            elif machine.key_id and machine.expires_at:
                ctx["key"] = machine.key_id
                ctx["expires_iso"] = iso(machine.expires_at)
                ctx["can_extend"] = settings.allow_extend and machine.extends < settings.max_extends
            else:
                session = await self._session(machine_id)
                current = int(session.get("step", "0")) if session else 0
                ctx["in_session"] = session is not None
                ctx["can_start"] = session is None
                ctx["current"] = current
                ctx["steps"] = [
                    {
                        "title": PROVIDERS[c.provider].title,
                        "state": "done" if k < current else "current" if k == current else "todo",
                    }
                    for k, c in enumerate(self.checkpoints)
                ]
            if settings.turnstile and (ctx["can_start"] or ctx.get("can_extend")):
                ctx["turnstile_script"] = turnstile.script_url(self.request.app[HTTP])
                ctx["turnstile_site_key"] = settings.turnstile.site_key
        elif not message:
            status, ctx["message"] = (
                REFUSALS["NOT_FREE"] if not self.on else REFUSALS["UNKNOWN_MACHINE"]
            )
            ctx["error"] = True
        ctx.setdefault("can_extend", False)
        ctx.setdefault("expires_iso", "")
        response = aiohttp_jinja2.render_template("getkey.html", self.request, ctx, status=status)
        links = [c.link for c in self.checkpoints]
        response.headers.update(_headers(self.request, turnstile_on, links))
        return response

    async def _session(self, machine_id: str) -> dict[str, str] | None:
        sid = self.request.cookies.get(COOKIE, "")
        if not sid or len(sid) > 64:
            return None
        session = await store(self.request).freekeys.session(self.project_id, sid)
        if session.get("mid") != machine_id:
            return None
        return session

    async def refuse(self, reason: str, machine_id: str | None, *, counted: bool) -> web.Response:
        """The page with the refusal's words (``counted``: the script counted it already)."""
        if not counted:
            await store(self.request).freekeys.count(self.project_id, f"refused:{reason}")
        status, text = REFUSALS.get(reason, (403, "Refused: " + reason))
        return await self.render(machine_id, message=text, error=True, status=status)


async def _page(request: web.Request) -> _Page:
    project_id = _project_id(request)
    state = await store(request).freekeys.state(project_id)
    return _Page(request, project_id, state)


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _machine_param(value: str | None) -> str | None:
    return value if value and MACHINE_ID.fullmatch(value) else None


async def page(request: web.Request) -> web.Response:
    """GET /getkey/{project_id}?id=<machine id>"""
    p = await _page(request)
    mid = _machine_param(request.query.get("id"))
    if p.on:
        await store(request).freekeys.count(p.project_id, "views")
    notice = NOTICES.get(request.query.get("done", ""), "")
    return await p.render(mid, message=notice)


async def start(request: web.Request) -> web.StreamResponse:
    """POST /getkey/{project_id}/start (form: id, mode): the first checkpoint (a new session;
    ``mode=extend``: passing them again extends the live key)."""
    p = await _page(request)
    form = await request.post()
    mid = _machine_param(str(form.get("id", "")))
    mode = "extend" if form.get("mode") == "extend" else "new"
    if not p.on or p.settings is None or mid is None:
        return await p.render(mid)
    settings = p.settings
    http = request.app[HTTP]
    if settings.turnstile is not None:
        answer = str(form.get("cf-turnstile-response", ""))
        try:
            passed = await turnstile.verify(
                http, p.state.secrets.get("turnstile", ""), answer, p.ip
            )
        except ProviderDown:
            return await p.refuse("PROVIDER_DOWN", mid, counted=False)
        if not passed:
            return await p.refuse("TURNSTILE", mid, counted=False)
    sid = secrets.token_urlsafe(24)
    click = secrets.token_hex(16)
    out = await _start(p, mode, mid, sid, click)
    if out.code == "HAS_KEY":
        return _see_other(f"/getkey/{p.project_id}?id={mid}&done=HAS_KEY")
    if out.code != "OK":
        return await p.refuse(out.code, mid, counted=True)
    response = _see_other(_link(p, 0, click))
    response.set_cookie(
        COOKIE,
        sid,
        max_age=3600,
        path=f"/getkey/{p.project_id}",
        httponly=True,
        samesite="Lax",
        secure=secure(request),
    )
    return response


async def next_(request: web.Request) -> web.StreamResponse:
    """POST /getkey/{project_id}/next: the session's next checkpoint (or the current one
    again)."""
    p = await _page(request)
    form = await request.post()
    mid = _machine_param(str(form.get("id", "")))
    if not p.on or mid is None:
        return await p.render(mid)
    sid = request.cookies.get(COOKIE, "")
    if not sid or len(sid) > 64:
        return await p.refuse("NO_SESSION", mid, counted=False)
    click = secrets.token_hex(16)
    out = await _start(p, "next", mid, sid, click)
    if out.code != "OK":
        return await p.refuse(out.code, mid, counted=True)
    return _see_other(_link(p, out.step, click))


async def _start(p: _Page, mode: str, mid: str, sid: str, click: str) -> Outcome:
    assert p.settings is not None
    settings = p.request.app[SETTINGS]
    return await store(p.request).freekeys.start(
        p.project_id,
        mode=mode,
        machine_id=mid,
        session_id=sid,
        ip=p.ip,
        subject=rate_subject(p.ip),
        browser=p.browser,
        click=click,
        checkpoints=len(p.checkpoints),
        keys_per_day=p.settings.keys_per_day,
        allow_extend=p.settings.allow_extend,
        max_extends=p.settings.max_extends,
        ip_limit=settings.free_keys_sessions,
        ip_window=SESSION_WINDOW,
    )


def _link(p: _Page, step: int, click: str) -> str:
    c = p.checkpoints[step]
    return PROVIDERS[c.provider].link_url(c, click)


async def back(request: web.Request) -> web.StreamResponse:
    """GET /getkey/{project_id}/return/{k}: back from checkpoint k; its provider confirms,
    then one script decides (store/lua/free_keys_complete.lua)."""
    p = await _page(request)
    raw = request.match_info["step"]
    if not p.on or p.settings is None or not raw.isdigit() or int(raw) >= len(p.checkpoints):
        return await p.render(None)
    k = int(raw)
    sid = request.cookies.get(COOKIE, "")
    session = await store(request).freekeys.session(p.project_id, sid) if sid else {}
    mid = _machine_param(session.get("mid"))
    if mid is None:
        return await p.refuse("NO_SESSION", None, counted=False)
    checkpoint = p.checkpoints[k]
    provider = PROVIDERS[checkpoint.provider]
    token = provider.token_of(request.query)
    if token is None:
        return await p.refuse("FORGED", mid, counted=False)
    if token:
        try:
            refusal = await provider.verify(request.app[HTTP], checkpoint, token, p.ip)
        except ProviderDown:
            return await p.refuse("PROVIDER_DOWN", mid, counted=False)
        if refusal is not None:
            return await p.refuse(refusal, mid, counted=False)
    s = p.settings
    out = await store(request).freekeys.complete(
        p.state.vendor_id,
        p.project_id,
        step=k,
        session_id=sid,
        machine_id=mid,
        ip=p.ip,
        browser=p.browser,
        token=f"{checkpoint.provider}:{token}" if token else "",
        click=session.get("click") if provider.needs_postback else None,
        checkpoints=len(p.checkpoints),
        min_seconds=s.min_seconds,
        key_hours=s.key_hours,
        keys_per_day=s.keys_per_day,
        allow_extend=s.allow_extend,
        max_extends=s.max_extends,
    )
    if out.code == "NEXT":
        return _see_other(f"/getkey/{p.project_id}?id={mid}")
    if out.code in NOTICES:
        return _see_other(f"/getkey/{p.project_id}?id={mid}&done={out.code}")
    return await p.refuse(out.code, mid, counted=True)


async def postback(request: web.Request) -> web.Response:
    """GET /getkey/{project_id}/postback/{secret}?click_id=&ip=&unique_id=: LootLabs' server
    tells that a player completed a checkpoint. Recorded once per ``unique_id``."""
    project_id = _project_id(request)
    state = await store(request).freekeys.state(project_id)
    given = request.match_info["secret"].encode()
    known = [v for f, v in state.secrets.items() if f.startswith("postback:")]
    if not any(hmac.compare_digest(given, v.encode()) for v in known):
        raise web.HTTPNotFound(text="Not found")
    q = request.query
    click = plain_token(q.get("click_id"))
    unique = plain_token(q.get("unique_id"))
    try:
        ip = str(ipaddress.ip_address(q.get("ip", "").strip()))
    except ValueError:
        ip = ""
    if not click or not unique or not ip:
        raise web.HTTPBadRequest(text="click_id, ip and unique_id are required")
    fresh = await store(request).freekeys.postback(project_id, click, unique, ip)
    return web.Response(text="ok" if fresh else "duplicate", content_type="text/plain")
