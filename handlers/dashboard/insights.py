"""The overview's crack attempts and executors: valid executions by executor over the last
24 hours and the signed loaders' reports of forged answers per day over the last 7, across
the vendor's projects. The API's own answers (handlers/reports.py), loaded after the page
(htmx), so the overview itself stays O(projects)."""

import calendar
import time

import msgspec
from aiohttp import web

from handlers.dashboard.base import Ctx, page, render
from handlers.reports import executor_counts, report_counts

EXECUTOR_HOURS = 24
REPORT_DAYS = 7


@page
async def overview_insights(request: web.Request, ctx: Ctx) -> web.StreamResponse:
    """GET /dashboard/overview/insights: the two cards of the overview beside its chart."""
    executors = await executor_counts(request, ctx.vendor_id, None, EXECUTOR_HOURS)
    reports = await report_counts(request, ctx.vendor_id, None, REPORT_DAYS)
    days = [calendar.timegm(time.strptime(d.day, "%Y-%m-%d")) for d in reports.daily]
    series = {"x": days, "y": [d.total for d in reports.daily]}
    context = {
        "executors": list(executors.totals.items()),
        "top": max(executors.totals.values(), default=0),
        "hours": EXECUTOR_HOURS,
        "reports": reports,
        "reports_json": msgspec.json.encode(series).decode(),
    }
    return render(request, "_insights.html", context, ctx=ctx)
