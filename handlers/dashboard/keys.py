"""A project's key tables (buyer and active keys: search, filters, row and bulk actions), the
generation of keys and its batch, and a Discord user's keys across projects."""

import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web
from multidict import MultiMapping

from handlers import ids, ratelimit, schemas
from handlers.appkeys import SETTINGS, store
from handlers.dashboard.base import Ctx, decode, field, is_htmx, page, render, store_error
from handlers.dashboard.shared import PAGE_SIZE, SCAN_BUDGET, project_names, see_other, url_project
from handlers.errors import ApiError
from store import errors
from store.models import ActiveKey, BuyerKey, Project


async def _key_table(request: web.Request, ctx: Ctx, project: Project, tab: str) -> dict[str, Any]:
    """What the key table (keys.html, _key_table.html) shows: the page of rows the query asks
    for (the store's key search: store/licences.py ``search``), and the query itself (search,
    filter, cursor) to keep in its links."""
    found = await store(request).licences.search(
        ctx.vendor_id,
        project.project_id,
        request.query.get("q", "").strip()[:128],
        ActiveKey if tab == "active" else BuyerKey,
        status=request.query.get("status", "all"),
        cursor=request.query.get("cursor") or None,
        limit=PAGE_SIZE,
        budget=SCAN_BUDGET,
    )
    note = found.by
    if found.by == "scan":
        more = "" if found.next is None else " (more to scan: next page)"
        note = f"scanned {found.scanned} keys{more}"
    return {
        "project": project,
        "tab": tab,
        "rows": found.rows,
        "next": found.next,
        "q": request.query.get("q", ""),
        "status": request.query.get("status", "all"),
        "cursor": request.query.get("cursor", ""),
        "search_note": note,
    }


@page
async def keys(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await url_project(request, ctx)
    tab = "active" if request.query.get("tab") == "active" else "buyer"
    context = await _key_table(request, ctx, project, tab)
    if is_htmx(request) and request.headers.get("HX-Target") == "key-table":
        return render(request, "_key_table.html", context, ctx=ctx)
    return render(request, "keys.html", context, ctx=ctx)


def _int(form: Any, name: str) -> int | str:
    value = field(form, name, "0").strip() or "0"
    return int(value) if value.isdigit() else value


@page
async def keys_generate(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await url_project(request, ctx)
    f = ctx.form
    note = field(f, "note")
    data = {
        "project_id": project.project_id,
        "amount": _int(f, "amount"),
        "key_days": _int(f, "key_days"),
        "key_hours": _int(f, "key_hours"),
        "key_minutes": _int(f, "key_minutes"),
        "note": note or None,
    }
    body = decode(schemas.buyer_key_create, data)
    settings = request.app[SETTINGS]
    s = store(request)
    if settings.rate_keygen > 0:
        rl = await s.vendors.hit_keygen(ctx.vendor_id, settings.rate_keygen, settings.rate_window)
        ratelimit.check(request, rl)
    created = await s.licences.generate(
        ctx.vendor_id,
        project.project_id,
        amount=body.amount,
        key_days=body.key_days,
        key_hours=body.key_hours,
        key_minutes=body.key_minutes,
        note=body.note,
    )
    await s.sessions.set_batch(ctx.session_id, msgspec.json.encode(created).decode())
    return render(request, "_batch.html", {"project": project, "batch": created}, ctx=ctx)


_batch_decoder = msgspec.json.Decoder(list[BuyerKey])


@page
async def keys_batch(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """GET .../keys/batch.txt|csv: the batch this session generated last, once more."""
    project = await url_project(request, ctx)
    raw = await store(request).sessions.batch(ctx.session_id)
    batch = [k for k in _batch_decoder.decode(raw or "[]") if k.project_id == project.project_id]
    if not batch:
        raise ApiError(404, "No batch of keys generated in this session")
    fmt = request.match_info["fmt"]
    name = f"keys-{project.project_id[:8]}-{len(batch)}.{fmt}"
    if fmt == "txt":
        text = "".join(k.key_id + "\n" for k in batch)
        ctype = "text/plain"
    else:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["key_id", "project_id", "created_at", "key_days", "key_hours", "key_minutes"])
        for k in batch:
            w.writerow(
                [k.key_id, k.project_id, k.created_at, k.key_days, k.key_hours, k.key_minutes]
            )
        text = out.getvalue()
        ctype = "text/csv"
    return web.Response(
        text=text,
        content_type=ctype,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@page
async def key_action(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """POST /dashboard/keys/{key_id}/{action}: one row's action; answers the row again."""
    key_id = request.match_info["key_id"]
    if not ids.KEY_ID.valid(key_id):
        raise errors.KeyNotFound
    action = request.match_info["action"]
    licences = store(request).licences
    v = ctx.vendor_id
    if action == "ban":
        await licences.ban(v, key_id)
    elif action == "unban":
        await licences.unban(v, key_id)
    elif action == "reset_hwid":
        await licences.reset_hwid(v, key_id)
    elif action == "set_hwid":
        body = decode(schemas.hwid_update, {"new_hwid": field(ctx.form, "hwid").strip() or None})
        await licences.set_hwid(v, key_id, body.new_hwid)
    elif action == "delete":
        await licences.delete_buyer(v, key_id)
        return web.Response(text="")  # the row goes
    elif action == "note":
        # The API's PATCH /api/vendor/keys/buyer|active/{key_id}: empty removes the note.
        body = decode(schemas.note_update, {"note": field(ctx.form, "note").strip() or None})
        if field(ctx.form, "tab") == "buyer":
            buyer = await licences.set_buyer_note(v, key_id, body.note)
            return render(request, "_key_row.html", {"k": buyer, "tab": "buyer"}, ctx=ctx)
        active = await licences.set_active_note(v, key_id, body.note)
        return render(request, "_key_row.html", {"k": active, "tab": "active"}, ctx=ctx)
    else:
        raise web.HTTPNotFound
    key = await licences.get_active(v, key_id)
    return render(request, "_key_row.html", {"k": key, "tab": "active"}, ctx=ctx)


# The bulk actions of the key tables: the action, the tab it is offered on, the store call.
BULK_ACTIONS: dict[str, str] = {
    "ban": "active",
    "unban": "active",
    "reset_hwid": "active",
    "delete": "buyer",
}
BULK_LABELS = {
    "ban": "Banned",
    "unban": "Unbanned",
    "reset_hwid": "HWID reset",
    "delete": "Deleted",
}
BULK_MAX = 100  # keys one bulk request may name (a table page is PAGE_SIZE rows)


@page
async def keys_bulk(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """POST .../keys/bulk?tab=&q=&status=&cursor=: one action on the selected keys, each
    with the store function its row action calls; answers the table again (the same query)
    with what failed, per key, in the API's own words."""
    project = await url_project(request, ctx)
    action = field(ctx.form, "action")
    tab = "active" if request.query.get("tab") == "active" else "buyer"
    if BULK_ACTIONS.get(action) != tab:
        offered = ", ".join(a for a, t in BULK_ACTIONS.items() if t == tab)
        raise ApiError(422, f"action: one of {offered} on this tab")
    form = ctx.form
    picked = form.getall("key_id", []) if isinstance(form, MultiMapping) else []
    selected = list(dict.fromkeys(k for k in picked if isinstance(k, str)))
    if not selected:
        raise ApiError(422, "key_id: select at least one key")
    if len(selected) > BULK_MAX:
        raise ApiError(422, f"key_id: at most {BULK_MAX} keys per request")
    licences = store(request).licences
    v = ctx.vendor_id
    calls: dict[str, Callable[[str], Awaitable[Any]]] = {
        "ban": lambda k: licences.ban(v, k),
        "unban": lambda k: licences.unban(v, k),
        "reset_hwid": lambda k: licences.reset_hwid(v, k),
        "delete": lambda k: licences.delete_buyer(v, k),
    }
    done = 0
    failures: list[tuple[str, str]] = []
    for key_id in selected:
        try:
            if not ids.KEY_ID.valid(key_id):
                raise errors.KeyNotFound
            if await licences.project_of(v, key_id) != project.project_id:
                raise errors.KeyNotFound  # a key of another project: not this table's
            await calls[action](key_id)
            done += 1
        except (ApiError, errors.StoreError) as exc:
            known = store_error(exc)
            if known is None or isinstance(exc, errors.StoreUnavailable):
                raise
            failures.append((key_id[:64], known[1]))
    context = await _key_table(request, ctx, project, tab)
    context["bulk"] = {"action": BULK_LABELS[action], "done": done, "failures": failures}
    if is_htmx(request):
        return render(request, "_key_table.html", context, ctx=ctx)
    # Without htmx: back to the table (the per-key outcome is shown with htmx only).
    return see_other(f"/dashboard/projects/{project.project_id}/keys?{request.query_string}")


@page
async def users(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    discord_id = request.query.get("discord_id", "").strip()
    found: list[ActiveKey] | None = None
    nxt = None
    if discord_id:
        if not ids.DISCORD_ID.valid(discord_id):
            raise ApiError(422, "discord_id: must be a Discord ID (a string of digits)")
        cursor = request.query.get("cursor") or None
        found, nxt = await store(request).licences.active_page(
            ctx.vendor_id, None, discord_id, cursor, PAGE_SIZE
        )
    context = {
        "discord_id": discord_id,
        "rows": found,
        "next": nxt,
        "names": await project_names(request, ctx),
    }
    return render(request, "users.html", context, ctx=ctx)
