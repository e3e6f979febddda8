"""Leaks: a leaked copy of the script read for the watermark of the key it came from, and that
key banned."""

from aiohttp import web

from handlers import ids, leaks, schemas
from handlers.appkeys import store
from handlers.dashboard.base import Ctx, decode, field, page, render
from handlers.dashboard.shared import project_names
from handlers.errors import ApiError
from store import errors


@page
async def leaks_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    return render(request, "leaks.html", {"match": None, "searched": False}, ctx=ctx)


@page
async def leaks_identify(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """POST /dashboard/leaks: the pasted or uploaded text, read for a key's watermark (the
    same as POST /api/vendor/leaks/identify)."""
    f = ctx.form
    upload = f.get("file")
    text = field(f, "text")
    if isinstance(upload, web.FileField):
        text = upload.file.read(leaks.MAX_LEAK + 1).decode("utf-8", errors="replace") or text
    if len(text.encode("utf-8", "surrogatepass")) > leaks.MAX_LEAK:
        raise ApiError(400, f"The leaked text is over {leaks.MAX_LEAK} bytes")
    match = await leaks.find(request, ctx.vendor_id, text) if text.strip() else None
    context = {
        "match": match,
        "searched": True,
        "names": await project_names(request, ctx),
        "banned": False,
    }
    return render(request, "leaks.html", context, ctx=ctx)


@page
async def leaks_ban(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """POST /dashboard/leaks/ban: bans the key a leak named, with the vendor's reason."""
    f = ctx.form
    key_id = field(f, "key_id")
    if not ids.KEY_ID.valid(key_id):
        raise errors.KeyNotFound
    body = decode(schemas.ban, {"reason": field(f, "reason").strip() or "Leaked the script"})
    await store(request).licences.ban(ctx.vendor_id, key_id, reason=body.reason)
    return render(request, "_flash.html", {"message": f"Key {key_id} banned"}, ctx=ctx)
