"""The vendor's blacklist of IPs (and networks) and HWIDs."""

from typing import Any

from aiohttp import web

from handlers import schemas
from handlers.appkeys import store
from handlers.dashboard.base import Ctx, decode, field, is_htmx, page, render
from handlers.dashboard.shared import PAGE_SIZE
from handlers.errors import ApiError
from store.blacklist import normalise_ip


@page
async def blacklist(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    cursor = request.query.get("cursor") or None
    entries, nxt = await store(request).blacklist.page(ctx.vendor_id, cursor, PAGE_SIZE)
    return render(request, "blacklist.html", {"entries": entries, "next": nxt}, ctx=ctx)


@page
async def blacklist_add(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    f = ctx.form
    data: dict[str, Any] = {
        "ip": field(f, "ip").strip() or None,
        "hwid": field(f, "hwid").strip() or None,
    }
    if field(f, "reason").strip():
        data["reason"] = field(f, "reason").strip()
    body = decode(schemas.blacklist_create, data)
    if not body.ip and not body.hwid:
        raise ApiError(400, "Must provide either IP or HWID")
    ip = None
    if body.ip:
        try:
            ip = normalise_ip(body.ip)
        except ValueError:
            raise ApiError(
                422, "ip: not an IP address or CIDR network (1.2.3.4, 10.0.0.0/8, 2001:db8::/32)"
            ) from None
    await store(request).blacklist.add(ctx.vendor_id, ip, body.hwid or None, body.reason)
    raise web.HTTPSeeOther("/dashboard/blacklist")


@page
async def blacklist_delete(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    await store(request).blacklist.delete(ctx.vendor_id, request.match_info["entry_id"][:64])
    if is_htmx(request):
        return web.Response(text="")
    raise web.HTTPSeeOther("/dashboard/blacklist")
