"""Sign in with Discord: OAuth2's authorization code flow with PKCE (S256) and ``state``, scope
``identify`` (docs/dashboard.md#sign-in-with-discord).

``start`` (sign in) and ``link`` (Settings: link the signed-in vendor's account) keep the
attempt in Redis under its ``state`` for 10 minutes (store/sessions.py ``start_oauth``: the
PKCE verifier, the digest of a pre-auth cookie, the mode) and send the browser to Discord.
``callback`` takes that record once (a replayed or forged ``state`` finds nothing), checks the
browser holds the pre-auth cookie, trades the code and the verifier for a token (a code works
once: Discord refuses a replay), reads who the user is, then signs the linked vendor in (the
same kind of session as an API key's), links the account, or, with LEAF7_SIGNUP=discord,
creates the user's own vendor account.
"""

import base64
import hashlib
import hmac
import logging
import secrets
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec
from aiohttp import web

from handlers import ids
from handlers.appkeys import SETTINGS, HttpSettings, store
from handlers.clientip import base_url
from handlers.dashboard.base import (
    COOKIE,
    IDLE,
    LIFETIME,
    SIGNIN_COOKIE,
    Ctx,
    clear_cookie,
    error_answer,
    new_token,
    page,
    render,
    set_cookie,
)

log = logging.getLogger(f"leaf7.{__name__}")

PREAUTH_COOKIE = "l7_oauth"  # binds an attempt to the browser that started it
TTL = 600  # seconds an attempt may take (the user on Discord's consent page)
CALLBACK = "/dashboard/oauth/discord/callback"
TIMEOUT = aiohttp.ClientTimeout(total=10)


class Attempt(msgspec.Struct):
    """What Redis keeps of one attempt, under its ``state``."""

    verifier: str  # PKCE: Discord checks its SHA-256 against the challenge sent first
    cookie: str  # SHA-256 of the pre-auth cookie's value
    mode: str  # "signin" or "link"
    vendor_id: str = ""  # the vendor linking ("link")


class Refused(Exception):
    """The sign-in fails with this status and message (nothing changed)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def redirect_uri(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    return settings.discord_redirect or base_url(request) + CALLBACK


def _configured(request: web.Request) -> HttpSettings:
    settings = request.app[SETTINGS]
    if not settings.discord_client_id:
        raise web.HTTPNotFound(text="Sign in with Discord is not configured")
    return settings


async def _begin(request: web.Request, mode: str, vendor_id: str = "") -> web.Response:
    settings = _configured(request)
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters (PKCE: 43 to 128)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    preauth = new_token()
    record = Attempt(verifier, _sha256(preauth), mode, vendor_id)
    await store(request).sessions.start_oauth(state, msgspec.json.encode(record).decode(), TTL)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.discord_client_id,
            "scope": "identify",
            "state": state,
            "redirect_uri": redirect_uri(request),
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
    )
    response = web.Response(
        status=303, headers={"Location": f"{settings.discord_oauth_base}/oauth2/authorize?{query}"}
    )
    set_cookie(request, response, PREAUTH_COOKIE, preauth, TTL)
    return response


async def start(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/oauth/discord/start: sign in (the sign-in page's button)."""
    return await _begin(request, "signin")


@page
async def link(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """POST /dashboard/oauth/discord/link (Settings, CSRF-checked): link this vendor's
    Discord account."""
    return await _begin(request, "link", ctx.vendor_id)


async def _discord_user(request: web.Request, code: str, verifier: str) -> dict[str, Any]:
    """Trades the code (and the PKCE verifier) for a token, then reads the user."""
    settings = request.app[SETTINGS]
    base = settings.discord_oauth_base
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri(request),
        "code_verifier": verifier,
    }
    auth = aiohttp.encode_basic_auth(
        settings.discord_client_id or "", settings.discord_client_secret or ""
    )
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            token_url = f"{base}/api/oauth2/token"
            async with http.post(token_url, data=form, headers={"Authorization": auth}) as resp:
                if resp.status != 200:
                    log.info("Discord refused a code: %s %s", resp.status, await resp.text())
                    raise Refused(400, "Discord refused the sign-in (an expired or used code)")
                token = await resp.json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            async with http.get(f"{base}/api/users/@me", headers=headers) as resp:
                if resp.status != 200:
                    raise Refused(502, "Discord did not say who you are: try again")
                user: dict[str, Any] = await resp.json()
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
        log.warning("Discord OAuth2 call failed: %r", exc)
        raise Refused(502, "Discord could not be reached: try again") from None
    if not isinstance(user.get("id"), str) or not ids.DISCORD_ID.valid(user["id"]):
        raise Refused(502, "Discord did not say who you are: try again")
    return user


async def _session_for(request: web.Request, vendor_id: str) -> web.Response:
    """A dashboard session like an API key's: bound to the vendor's current API key, so a
    rotation ends it like every other session (docs/dashboard.md)."""
    s = store(request)
    digest = await s.vendors.key_digest(vendor_id)
    if digest is None:
        raise Refused(403, "This vendor account no longer exists")
    session_id, _ = await s.sessions.create(vendor_id, digest, IDLE, LIFETIME)
    response = web.Response(status=303, headers={"Location": "/dashboard/"})
    set_cookie(request, response, COOKIE, session_id, LIFETIME)
    clear_cookie(request, response, SIGNIN_COOKIE)
    return response


async def _sign_in(request: web.Request, user: dict[str, Any]) -> web.Response:
    vendors = store(request).vendors
    discord_id: str = user["id"]
    vendor_id = await vendors.by_discord(discord_id)
    if vendor_id is None and request.app[SETTINGS].discord_signup:
        vendor_id = await vendors.reserve_discord(discord_id)
        if await vendors.key_digest(vendor_id) is None:  # reserved now: create it
            name = str(user.get("global_name") or user.get("username") or "vendor")[:64]
            await vendors.create(name, discord_id, vendor_id=vendor_id)
            log.info("vendor %s signed up with Discord", vendor_id)
    if vendor_id is None:
        raise Refused(
            403,
            "No vendor account is linked to this Discord account: sign in with your API key "
            "and link it in Settings, or ask the operator for an account",
        )
    return await _session_for(request, vendor_id)


async def _link(request: web.Request, attempt: Attempt, user: dict[str, Any]) -> web.Response:
    # The browser must still be signed in as the vendor that started the link.
    session_id = request.cookies.get(COOKIE, "")
    session = await store(request).sessions.resume(session_id, IDLE) if session_id else None
    if session is None or session.vendor_id != attempt.vendor_id:
        raise Refused(403, "Sign in again, then link your Discord account from Settings")
    holder = await store(request).vendors.claim_discord(attempt.vendor_id, user["id"])
    if holder is not None:
        raise Refused(409, "This Discord account is already linked to another vendor account")
    return web.Response(status=303, headers={"Location": "/dashboard/settings"})


async def callback(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/oauth/discord/callback: Discord sends the browser back here."""
    _configured(request)
    state = request.query.get("state", "")
    raw = await store(request).sessions.take_oauth(state)  # once: even when refused below
    mode = "signin"
    try:
        if raw is None:
            raise Refused(400, "Sign in with Discord failed: unknown or expired state")
        attempt = msgspec.json.decode(raw, type=Attempt)
        mode = attempt.mode
        preauth = request.cookies.get(PREAUTH_COOKIE, "")
        if not preauth or not hmac.compare_digest(_sha256(preauth), attempt.cookie):
            raise Refused(400, "Sign in with Discord failed: started in another browser")
        if "error" in request.query:  # the user said no on Discord's page
            raise Refused(403, "Sign in with Discord was cancelled")
        code = request.query.get("code", "")
        if not code or len(code) > 512:
            raise Refused(400, "Sign in with Discord failed: no code")
        user = await _discord_user(request, code, attempt.verifier)
        if attempt.mode == "link":
            response = await _link(request, attempt, user)
        else:
            response = await _sign_in(request, user)
    except Refused as exc:
        response = _refused(request, mode, exc)
    clear_cookie(request, response, PREAUTH_COOKIE)
    return response


def _refused(request: web.Request, mode: str, exc: Refused) -> web.Response:
    if mode == "link":
        return error_answer(request, None, exc.status, exc.detail)
    token = request.cookies.get(SIGNIN_COOKIE) or new_token()
    context = {"signin_csrf": token, "error": exc.detail}
    response = render(request, "signin.html", context, status=exc.status)
    set_cookie(request, response, SIGNIN_COOKIE, token, 3600)
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/dashboard/oauth/discord/start", start)
    router.add_post("/dashboard/oauth/discord/link", link)
    router.add_get(CALLBACK, callback)
