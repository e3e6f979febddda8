"""The events page and its live feed (the latest events, filtered by kind and project)."""

from typing import Any

from aiohttp import web

from handlers.appkeys import store
from handlers.dashboard.base import Ctx, page, render
from handlers.dashboard.shared import project_names

EVENT_KINDS = ("Success", "Warning", "Critical")


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
        "names": await project_names(request, ctx),
        "kinds": EVENT_KINDS,
    }


@page
async def events(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    return render(request, "events.html", await _events(request, ctx), ctx=ctx)


@page
async def events_feed(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    return render(request, "_events.html", await _events(request, ctx), ctx=ctx)
