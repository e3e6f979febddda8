"""Vendor dashboard data: recent events, an overview, and executions per hour."""

import time
from collections.abc import Awaitable

from aiohttp import web

from handlers import listing, schemas
from handlers.appkeys import store
from handlers.auth import vendor_operations
from handlers.body import json_response
from handlers.params import PROJECT_QUERY, project_query
from store.models import Event

route = vendor_operations("metrics")


@route(
    "Recent events across the vendor's projects, newest first",
    {200: list[Event]},
    query=(listing.limit_param(maximum=100, default=4), listing.CURSOR),
    headers=listing.NEXT_CURSOR_HEADER,
)
async def events(request: web.Request, vendor_id: str) -> web.StreamResponse:
    """GET /api/vendor/metrics/events?limit= (default 4, at most 100)[&cursor=], newest
    first; X-Next-Cursor while older events are left."""
    analytics = store(request).analytics

    def fetch(cursor: str | None, limit: int) -> Awaitable[tuple[list[Event], str | None]]:
        return analytics.recent_events(vendor_id, limit, cursor)

    return await listing.respond(request, fetch, maximum=100, default=4)


@route("Projects, executions and keys at a glance", {200: schemas.Overview})
async def overview(request: web.Request, vendor_id: str) -> web.Response:
    data = await store(request).analytics.overview(vendor_id)
    return json_response({**data, "api_status": "Operational"})


@route(
    "Valid executions in each of the last 12 hours",
    {200: schemas.Chart},
    query=(PROJECT_QUERY,),
)
async def chart(request: web.Request, vendor_id: str) -> web.Response:
    """GET /api/vendor/metrics/chart[?project_id=]: valid executions in each of the last 12
    hours (UTC), oldest first; the last entry is the current hour so far."""
    hours, counts = await store(request).analytics.hourly_executions(
        vendor_id, project_query(request)
    )
    total = sum(counts)
    stats = {
        "total_executions": total,
        "peak": max(counts),
        "average_per_hour": round(total / len(counts), 2),
    }
    labels = [time.strftime("%H:00", time.gmtime(h * 3600)) for h in hours]
    return json_response({"stats": stats, "chartData": counts, "timeLabels": labels})
