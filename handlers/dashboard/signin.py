"""The dashboard's sign-in with an API key (with Discord: handlers/dashboard/oauth.py) and
sign-out."""

import hmac

from aiohttp import web

from handlers.appkeys import SETTINGS, store
from handlers.clientip import client_ip, rate_subject
from handlers.dashboard.base import (
    IDLE,
    LIFETIME,
    SIGNIN_COOKIE,
    Ctx,
    field,
    new_token,
    page,
    render,
    set_cookie,
)
from handlers.dashboard.shared import signed_in, signed_out
from handlers.errors import STORE_ERRORS
from store import errors


async def signin_form(request: web.Request) -> web.StreamResponse:
    token = request.cookies.get(SIGNIN_COOKIE) or new_token()
    response = render(request, "signin.html", {"signin_csrf": token})
    set_cookie(request, response, SIGNIN_COOKIE, token, 3600)
    return response


async def signin(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/signin: the API key, once; a session in Redis, its id in a cookie."""
    form = await request.post()
    cookie = request.cookies.get(SIGNIN_COOKIE, "")
    token = field(form, "csrf")
    if not cookie or not hmac.compare_digest(token.encode(), cookie.encode()):
        return web.Response(status=403, text="CSRF token missing or wrong")
    settings = request.app[SETTINGS]
    if settings.brute_force_limit > 0:
        rl = await store(request).sessions.hit_signin(
            rate_subject(client_ip(request)),
            settings.brute_force_limit,
            settings.brute_force_window,
        )
        if not rl.allowed:
            return render(
                request,
                "signin.html",
                {"signin_csrf": cookie, "error": "Too many sign-in attempts: try again later"},
                status=429,
                headers={"Retry-After": str(rl.retry_after)},
            )
    api_key = field(form, "api_key").strip()
    caller = None
    if api_key and len(api_key) <= 256:
        caller = await store(request).vendors.authenticate_limited(api_key, 0, 1)
    if caller is None:
        context = {"signin_csrf": cookie, "error": "Not authenticated: unknown API key"}
        return render(request, "signin.html", context, status=401)
    vendors = store(request).vendors
    digest = vendors.api_key_digest(api_key)
    sessions = store(request).sessions
    session_id, _ = await sessions.create(caller.vendor_id, digest, IDLE, LIFETIME)
    if await sessions.resume(session_id, IDLE) is None:  # a key in its grace period
        _, detail = STORE_ERRORS[errors.NotCurrentKey]
        return render(request, "signin.html", {"signin_csrf": cookie, "error": detail}, status=403)
    return signed_in(request, session_id)


@page
async def signout(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    await store(request).sessions.delete(ctx.session_id)
    return signed_out(request)


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/dashboard/")
