"""The overview: the vendor's figures, the last 12 hours' executions, the latest events, and the
banned-key count loaded after the page."""

import time

import msgspec
from aiohttp import web

from handlers.appkeys import store
from handlers.dashboard.base import Ctx, page, render
from handlers.dashboard.shared import SCAN_BUDGET, project_names
from store.models import ActiveKey


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
            "names": await project_names(request, ctx),
            # (the "getting started" card, shown while there is no project, names this step)
            "discord_linked": bool(await s.vendors.discord_id(ctx.vendor_id)),
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
    found = await store(request).licences.search(
        ctx.vendor_id, None, "", ActiveKey, status="banned", limit=SCAN_BUDGET, budget=SCAN_BUDGET
    )
    permanent = sum(k.ban_expires_at is None for k in found.rows)
    return len(found.rows), permanent, found.scanned, found.next is None
