"""The dashboard's pages and actions. Every action calls the same store functions the API
handlers call, and shows the API's own ``detail`` message when one fails."""

import csv
import hmac
import io
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from aiohttp import web
from multidict import MultiMapping

from handlers import ids, ratelimit, schemas
from handlers.appkeys import SETTINGS
from handlers.common import client_ip, project_id_param, rate_subject, store
from handlers.dashboard.base import (
    COOKIE,
    IDLE,
    LIFETIME,
    SIGNIN_COOKIE,
    Ctx,
    checked,
    clear_cookie,
    decode,
    error_answer,
    field,
    is_htmx,
    new_token,
    page,
    render,
    set_cookie,
    store_error,
)
from handlers.errors import STORE_ERRORS, ApiError
from handlers.luagen import MACROS, used_macros
from handlers.targets import url_refusal
from store import errors
from store.blacklist import normalise_ip
from store.models import ActiveKey, BuyerKey, Project
from store.paging import MAX_LIMIT

PAGE_SIZE = 50  # rows of a key table page
# Keys a search by HWID or note, or a status filter, reads per request at most (then it
# offers to continue from where it stopped).
SCAN_BUDGET = 5_000
EVENT_KINDS = ("Success", "Warning", "Critical")


def see_other(location: str) -> web.Response:
    """A 303 answer that cookies can be set on (and returned, not raised)."""
    return web.Response(status=303, headers={"Location": location})


# ---- sign-in ---------------------------------------------------------------------------------


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
    response = see_other("/dashboard/")
    set_cookie(request, response, COOKIE, session_id, LIFETIME)
    clear_cookie(request, response, SIGNIN_COOKIE)
    return response


@page
async def signout(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    await store(request).sessions.delete(ctx.session_id)
    response = see_other("/dashboard/signin")
    clear_cookie(request, response, COOKIE)
    return response


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/dashboard/")


# ---- overview --------------------------------------------------------------------------------


@page
async def overview(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    s = store(request)
    data = await s.analytics.overview(ctx.vendor_id)
    counts = await s.analytics.key_counts(ctx.vendor_id)
    hours, chart = await s.analytics.hourly_executions(ctx.vendor_id, None)
    events, _ = await s.analytics.recent_events(ctx.vendor_id, 10)
    labels = [time.strftime("%H:00", time.gmtime(h * 3600)) for h in hours]
    chart_json = msgspec.json.encode({"x": [h * 3600 for h in hours], "y": chart}).decode()
    return render(
        request,
        "overview.html",
        {
            "data": data,
            "counts": counts,
            "last12": sum(chart),
            "chart_json": chart_json,
            "chart_rows": list(zip(labels, chart, strict=True)),
            "events": events,
            "names": await _project_names(request, ctx),
        },
        ctx=ctx,
    )


@page
async def overview_banned(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """GET /dashboard/overview/banned: the banned-key figure, loaded after the page (a scan
    of up to SCAN_BUDGET keys; the overview itself stays O(projects))."""
    banned, permanent, scanned, complete = await _banned_keys(request, ctx)
    context = {
        "banned": banned,
        "permanent": permanent,
        "scanned": scanned,
        "complete": complete,
    }
    return render(request, "_banned.html", context, ctx=ctx)


async def _banned_keys(request: web.Request, ctx: Ctx) -> tuple[int, int, int, bool]:
    """(banned keys, of them banned for good, keys read, whether every key was read): a
    bounded scan of the vendor's active keys, SCAN_BUDGET keys per request at most (exact
    below that; a timed ban that has ended counts as none, as everywhere)."""
    licences = store(request).licences
    banned = permanent = scanned = 0
    for project_id in await store(request).vendors.project_ids(ctx.vendor_id):
        cursor: str | None = None
        while True:
            if scanned >= SCAN_BUDGET:
                return banned, permanent, scanned, False
            items, cursor = await licences.active_page(
                ctx.vendor_id, project_id, None, cursor, min(MAX_LIMIT, SCAN_BUDGET - scanned)
            )
            scanned += len(items)
            for k in items:
                if k.banned:
                    banned += 1
                    permanent += k.ban_expires_at is None
            if cursor is None:
                break
    return banned, permanent, scanned, True


async def _project_names(request: web.Request, ctx: Ctx) -> dict[str, str]:
    return {p.project_id: p.name for p in await store(request).projects.list(ctx.vendor_id)}


# ---- projects --------------------------------------------------------------------------------


def _check_webhook(request: web.Request, url: object) -> None:
    if isinstance(url, str):
        refusal = url_refusal(url, request.app[SETTINGS].webhook_allow)
        if refusal is not None:
            raise ApiError(422, f"webhook_url: {refusal}")


def _project_form(ctx: Ctx) -> dict[str, Any]:
    f = ctx.form
    cooldown = field(f, "hwid_reset_cooldown", "86400").strip()
    data: dict[str, Any] = {
        "name": field(f, "name").strip(),
        "description": field(f, "description"),
        "ffa_active": checked(f, "ffa_active"),
        "webhook_url": field(f, "webhook_url").strip() or None,
        "notify_enabled": checked(f, "notify_enabled"),
        "silent_mode": checked(f, "silent_mode"),
        "hwid_reset_cooldown": int(cooldown) if cooldown.isdigit() else cooldown,
    }
    return data


@page
async def projects(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    found = await store(request).projects.list(ctx.vendor_id)
    found.sort(key=lambda p: (p.created_at or "", p.project_id))
    return render(request, "projects.html", {"projects": found}, ctx=ctx)


@page
async def project_create(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    body = decode(schemas.project_create, _project_form(ctx))
    _check_webhook(request, body.webhook_url)
    project = await store(request).projects.create(ctx.vendor_id, schemas.project_fields(body))
    raise web.HTTPSeeOther(f"/dashboard/projects/{project.project_id}")


async def _project(request: web.Request, ctx: Ctx) -> Project:
    project_id = project_id_param(request.match_info["project_id"])
    return await store(request).projects.get(ctx.vendor_id, project_id)


@page
async def project_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await _project(request, ctx)
    return render(request, "project.html", {"project": project}, ctx=ctx)


@page
async def project_update(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await _project(request, ctx)
    data = _project_form(ctx)
    data["is_active"] = checked(ctx.form, "is_active")
    body = decode(schemas.project_update, data)
    _check_webhook(request, body.webhook_url)
    changes = schemas.project_fields(body)
    updated = await store(request).projects.update(ctx.vendor_id, project.project_id, changes)
    context = {"project": updated, "saved": True}
    if is_htmx(request):
        return render(request, "_project_form.html", context, ctx=ctx)
    return render(request, "project.html", context, ctx=ctx)


@page
async def project_webhook_test(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """POST .../webhook_test: a TEST notification queued for the project's webhook (the same
    durable stream real events take; the deliverers send it)."""
    project = await _project(request, ctx)
    await store(request).webhooks.send_test(ctx.vendor_id, project.project_id)
    message = "Test event queued: it is sent to the webhook within seconds."
    if is_htmx(request):
        return render(request, "_flash.html", {"message": message}, ctx=ctx)
    return render(request, "project.html", {"project": project, "message": message}, ctx=ctx)


@page
async def project_delete(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await _project(request, ctx)
    if field(ctx.form, "confirm") != project.name:
        raise ApiError(422, "confirm: type the project's name to delete it")
    await store(request).projects.delete(ctx.vendor_id, project.project_id)
    if is_htmx(request):
        return web.Response(status=204, headers={"HX-Redirect": "/dashboard/projects"})
    raise web.HTTPSeeOther("/dashboard/projects")


# ---- keys ------------------------------------------------------------------------------------

Row = BuyerKey | ActiveKey


def _matcher(tab: str, q: str, status: str) -> Callable[[Any], bool] | None:
    """The predicate of a scanned search (HWID exact, or note substring) and/or filter."""
    if not q and status == "all":
        return None
    needle = q.casefold()

    def match(k: Any) -> bool:
        if q:
            hwid = getattr(k, "hwid", None)
            note = k.note if isinstance(k.note, str) else ""
            if hwid != q and needle not in note.casefold():
                return False
        if status == "banned":
            return bool(getattr(k, "banned", False))
        if status == "unbanned":
            return not getattr(k, "banned", False)
        if status == "redeemed":
            return bool(getattr(k, "redeemed", False))
        if status == "unredeemed":
            return not getattr(k, "redeemed", True)
        return True

    return match


async def _key_rows(
    request: web.Request, ctx: Ctx, project_id: str, tab: str
) -> tuple[list[Any], str | None, str]:
    """(rows, next cursor, a note about the search) for the key table."""
    q = request.query.get("q", "").strip()[:128]
    status = request.query.get("status", "all")
    cursor = request.query.get("cursor") or None
    licences = store(request).licences
    if q and ids.KEY_ID.valid(q) and len(q) == 32:  # a key id: one exact lookup
        try:
            if tab == "active":
                return [await licences.get_active(ctx.vendor_id, q)], None, "key id"
            return [await licences.get_buyer(ctx.vendor_id, q)], None, "key id"
        except errors.KeyNotFound:
            pass  # not a key of this project's: a HWID or note, below
    discord = tab == "active" and q.isdigit() and ids.DISCORD_ID.valid(q)

    def fetch(c: str | None, limit: int) -> Awaitable[tuple[Sequence[Any], str | None]]:
        if tab == "active":
            who = q if discord else None
            return licences.active_page(ctx.vendor_id, project_id, who, c, limit)
        return licences.buyer_page(ctx.vendor_id, project_id, c, limit)

    match = _matcher(tab, "" if discord else q, status)
    if match is None:
        items, nxt = await fetch(cursor, PAGE_SIZE)
        return list(items), nxt, "discord id" if discord else ""
    # A bounded scan: pages of the store's listing, at most SCAN_BUDGET keys per request.
    rows: list[Any] = []
    scanned = 0
    nxt = cursor
    while scanned < SCAN_BUDGET and len(rows) < PAGE_SIZE:
        items, nxt = await fetch(nxt, min(MAX_LIMIT, SCAN_BUDGET - scanned))
        scanned += len(items)
        rows.extend(k for k in items if match(k))
        if nxt is None:
            break
    note = f"scanned {scanned} keys" + ("" if nxt is None else " (more to scan: next page)")
    return rows[:PAGE_SIZE], nxt, note


async def _key_table(request: web.Request, ctx: Ctx, project: Project, tab: str) -> dict[str, Any]:
    """What the key table (keys.html, _key_table.html) shows: the page of rows the query asks
    for, and the query itself (search, filter, cursor) to keep in its links."""
    rows, nxt, note = await _key_rows(request, ctx, project.project_id, tab)
    return {
        "project": project,
        "tab": tab,
        "rows": rows,
        "next": nxt,
        "q": request.query.get("q", ""),
        "status": request.query.get("status", "all"),
        "cursor": request.query.get("cursor", ""),
        "search_note": note,
    }


@page
async def keys(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await _project(request, ctx)
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
    project = await _project(request, ctx)
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
    project = await _project(request, ctx)
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
    project = await _project(request, ctx)
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
            if await licences.project_of(key_id) != project.project_id:
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


# ---- hosted script ---------------------------------------------------------------------------


@page
async def script_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await _project(request, ctx)
    return await _script(request, ctx, project)


async def _script(
    request: web.Request, ctx: Ctx, project: Project, saved: bool = False
) -> web.StreamResponse:
    source = await store(request).projects.source(ctx.vendor_id, project.project_id)
    base = request.app[SETTINGS].public_url or f"{request.scheme}://{request.host}"
    loader_url = f"{base}/api/loader/{project.project_id}/loader.lua"
    snippet = f'script_key = "YOUR_KEY"\nloadstring(game:HttpGet("{loader_url}"))()'
    return render(
        request,
        "script.html",
        {
            "project": project,
            "source": source,
            "macros": [m for m in used_macros(source).split(",") if m],
            "all_macros": MACROS,
            "snippet": snippet,
            "saved": saved,
        },
        ctx=ctx,
    )


@page
async def script_upload(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await _project(request, ctx)
    f = ctx.form
    upload = f.get("file")
    source = field(f, "source")
    if isinstance(upload, web.FileField):
        source = upload.file.read().decode("utf-8", errors="replace")
    limit = request.app[SETTINGS].max_source
    data: dict[str, Any] = {"source": source}
    if field(f, "version").strip():
        data["version"] = field(f, "version").strip()
    body = decode(schemas.source_update_decoder(limit), data)
    updated = await store(request).projects.set_source(
        ctx.vendor_id, project.project_id, body.source, body.version, used_macros(body.source)
    )
    return await _script(request, ctx, updated, saved=True)


# ---- users, blacklist, events, settings ------------------------------------------------------


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
        "names": await _project_names(request, ctx),
    }
    return render(request, "users.html", context, ctx=ctx)


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


async def _events(request: web.Request, ctx: Ctx) -> dict[str, Any]:
    kind = request.query.get("kind", "")
    project = request.query.get("project", "")
    found, _ = await store(request).analytics.recent_events(ctx.vendor_id, 100)
    if project:
        found = [e for e in found if e.project_id == project]
    if kind:
        found = [e for e in found if e.type == kind]
    return {
        "events": found[:50],
        "kind": kind,
        "project": project,
        "names": await _project_names(request, ctx),
        "kinds": EVENT_KINDS,
    }


@page
async def events(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    return render(request, "events.html", await _events(request, ctx), ctx=ctx)


@page
async def events_feed(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    return render(request, "_events.html", await _events(request, ctx), ctx=ctx)


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
    response = see_other("/dashboard/signin")
    clear_cookie(request, response, COOKIE)
    return response


async def not_found(request: web.Request) -> web.StreamResponse:
    return error_answer(request, None, 404, "Not found")
