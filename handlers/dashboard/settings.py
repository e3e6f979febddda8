"""Settings: the vendor's account, a new API key, signing out everywhere."""

import time

from aiohttp import web

from handlers.appkeys import SETTINGS, store
from handlers.dashboard.base import Ctx, page, render
from handlers.dashboard.shared import signed_out


@page
async def settings(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    vendor = await store(request).vendors.get(ctx.vendor_id)
    return render(request, "settings.html", {"vendor": vendor}, ctx=ctx)


@page
async def rotate(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """A new API key, shown once; every other session (opened with the old key) ends, this
    one follows the new key."""
    s = store(request)
    grace = request.app[SETTINGS].api_key_grace
    api_key, expires = await s.vendors.rotate_api_key(ctx.vendor_id, grace, ctx.session.digest)
    await s.sessions.rebind(ctx.session_id, s.vendors.api_key_digest(api_key))
    vendor = await s.vendors.get(ctx.vendor_id)
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires))
    context = {"vendor": vendor, "new_key": api_key, "expires": until}
    return render(request, "settings.html", context, ctx=ctx)


@page
async def signout_all(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    await store(request).sessions.delete_all(ctx.vendor_id)
    return signed_out(request)
