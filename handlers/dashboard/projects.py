"""The projects: the list, a new one, a project's settings form, its webhook test and deletion."""

from typing import Any

from aiohttp import web

from handlers import obfuscation, schemas
from handlers.appkeys import SETTINGS, store
from handlers.dashboard.base import Ctx, checked, decode, field, is_htmx, page, render
from handlers.dashboard.shared import url_project
from handlers.errors import ApiError
from handlers.targets import url_refusal


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
        "signed_verdicts": checked(f, "signed_verdicts"),
        "watermark": checked(f, "watermark"),
        "hwid_reset_cooldown": int(cooldown) if cooldown.isdigit() else cooldown,
    }
    if "obfuscation" in f:
        data["obfuscation"] = field(f, "obfuscation")
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


@page
async def project_page(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await url_project(request, ctx)
    return render(request, "project.html", {"project": project}, ctx=ctx)


@page
async def project_update(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await url_project(request, ctx)
    data = _project_form(ctx)
    data["is_active"] = checked(ctx.form, "is_active")
    body = decode(schemas.project_update, data)
    _check_webhook(request, body.webhook_url)
    changes = schemas.project_fields(body)
    if project.watermark and changes.get("watermark") == "1":
        del changes["watermark"]  # on already: its plan is kept with each upload
    updated = await obfuscation.update(request, ctx.vendor_id, project.project_id, changes)
    context = {"project": updated, "saved": True}
    if is_htmx(request):
        return render(request, "_project_form.html", context, ctx=ctx)
    return render(request, "project.html", context, ctx=ctx)


@page
async def project_webhook_test(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """POST .../webhook_test: a TEST notification queued for the project's webhook (the same
    durable stream real events take; the deliverers send it)."""
    project = await url_project(request, ctx)
    await store(request).webhooks.send_test(ctx.vendor_id, project.project_id)
    message = "Test event queued: it is sent to the webhook within seconds."
    if is_htmx(request):
        return render(request, "_flash.html", {"message": message}, ctx=ctx)
    return render(request, "project.html", {"project": project, "message": message}, ctx=ctx)


@page
async def project_delete(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    project = await url_project(request, ctx)
    if field(ctx.form, "confirm") != project.name:
        raise ApiError(422, "confirm: type the project's name to delete it")
    await store(request).projects.delete(ctx.vendor_id, project.project_id)
    if is_htmx(request):
        return web.Response(status=204, headers={"HX-Redirect": "/dashboard/projects"})
    raise web.HTTPSeeOther("/dashboard/projects")
