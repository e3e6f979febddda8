"""Crack attempts and executors: the signed loader's report of a forged answer it refused
(``POST /api/loader/report``, anonymous), and the vendor's analytics of both
(``GET /api/vendor/analytics/executors``, ``GET /api/vendor/analytics/reports``).
See docs/loader-security.md#reports and docs/api.md#executor-analytics."""

import time

from aiohttp import web

from handlers import executors, ids, ratelimit, schemas
from handlers.appkeys import store
from handlers.auth import vendor_operations
from handlers.body import json_response, read_json
from handlers.clientip import client_ip, rate_subject
from handlers.errors import ApiError
from handlers.openapi import Param, operation
from handlers.params import PROJECT_QUERY, project_query
from store import ProjectNotFound
from store.freekeys import iso_day

# A report is a few fixed fields: anything longer is not one.
REPORT_MAX_BODY = 1024
MAX_HOURS = 168
MAX_DAYS = 100

route = vendor_operations("analytics")


@operation(
    "The loader's report of a forged answer it refused",
    {204: None},
    body=schemas.ReportRequest,
    errors=(404,),
    limited=True,
    description="Sent by the signed loader when an answer fails verification (not signed, "
    "unknown key id, another run's nonce, malformed, stale, altered script, bad signature): "
    "counted per project and UTC day, and a Critical event (`Forged answer refused`) on the "
    "project's feed and webhook (the first 100 of a day). Anonymous, so a signal, not a "
    "proof: anyone may send one, and a cracker may suppress it. Rate limited like the loader "
    "check (LEAF7_RATE_EXECUTE reports per window per project and client IP, counted apart "
    "from checks); a body over 1 KiB is 400.",
    tags=("loader",),
)
async def report(request: web.Request) -> web.Response:
    """POST /api/loader/report: {project_id, reason, executor?} in, 204 out."""
    body = await read_json(request, schemas.report_request, REPORT_MAX_BODY)
    if not ids.PROJECT_ID.valid(body.project_id):
        raise ProjectNotFound  # cannot name a project: no Redis call
    s = store(request)
    ip = client_ip(request)
    lim = s.checks.limits
    rl = await s.analytics.report(
        body.project_id,
        body.reason,
        rate_subject(ip),
        ip,
        executors.normalise(body.executor),
        (lim.execute, lim.execute_window),
    )
    if not rl.allowed:
        raise ratelimit.too_many(rl.limit, rl.reset, rl.retry_after)
    headers = {} if rl.remaining < 0 else ratelimit.rate_headers(rl.limit, rl.remaining, rl.reset)
    return web.Response(status=204, headers=headers)


class _Window:
    """A window of time to count over, a query parameter (``hours``, ``days``): its
    documentation and its parser."""

    def __init__(self, name: str, default: int, maximum: int, text: str) -> None:
        self.name, self.default, self.maximum = name, default, maximum
        self.param = Param(
            name,
            {"type": "integer", "minimum": 1, "maximum": maximum},
            f"{text}, 1 to {maximum} (default {default})",
            errors=(422,),
        )

    def get(self, request: web.Request) -> int:
        raw = request.query.get(self.name, str(self.default))
        if not raw.isdigit() or not 1 <= int(raw) <= self.maximum:
            raise ApiError(422, f"{self.name}: must be an integer from 1 to {self.maximum}")
        return int(raw)


HOURS = _Window("hours", 24, MAX_HOURS, "Hours up to the current one (UTC)")
DAYS = _Window("days", 7, MAX_DAYS, "Days up to today (UTC)")


def _iso_hour(hour: int) -> str:
    return time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(hour * 3600))


async def executor_counts(
    request: web.Request, vendor_id: str, project_id: str | None, hours: int
) -> schemas.Executors:
    rows = await store(request).analytics.executors(vendor_id, project_id, hours)
    totals: dict[str, int] = {}
    for _, counts in rows:
        for name, n in counts.items():
            totals[name] = totals.get(name, 0) + n
    ranked = dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))
    return schemas.Executors(
        hours=hours,
        totals=ranked,
        hourly=[schemas.ExecutorHour(hour=_iso_hour(h), counts=c) for h, c in rows],
    )


async def report_counts(
    request: web.Request, vendor_id: str, project_id: str | None, days: int
) -> schemas.Reports:
    rows = await store(request).analytics.reports(vendor_id, project_id, days)
    daily = [
        schemas.ReportDay(
            day=iso_day(day),
            total=counts.get("total", 0),
            reasons={r: counts[r] for r in schemas.REPORT_REASONS if counts.get(r)},
        )
        for day, counts in rows
    ]
    return schemas.Reports(days=days, total=sum(d.total for d in daily), daily=daily)


@route(
    "Valid executions by executor, per hour",
    {200: schemas.Executors},
    query=(PROJECT_QUERY, HOURS.param),
    description="Valid executions of one project (or, without `project_id`, of all the "
    "vendor's) by executor name over the last `hours` hours (UTC), the current hour so far "
    "included: `totals` (most first) and `hourly` (oldest first). Names are normalised "
    "(lower case, version dropped, known executors by one name: `synapse x` -> `synapse`); "
    "`unknown` when the loader sent none; at most 16 names per project and hour, the runs "
    "of any other counted as `other`.",
)
async def executors_(request: web.Request, vendor_id: str) -> web.Response:
    data = await executor_counts(request, vendor_id, project_query(request), HOURS.get(request))
    return json_response(data)


@route(
    "Forged answers refused by the loaders, per day",
    {200: schemas.Reports},
    query=(PROJECT_QUERY, DAYS.param),
    description="Reports of the signed loader (`POST /api/loader/report`) for one project "
    "(or, without `project_id`, all the vendor's) over the last `days` UTC days, oldest "
    "first, today last: each day's total and counts by reason.",
)
async def reports(request: web.Request, vendor_id: str) -> web.Response:
    data = await report_counts(request, vendor_id, project_query(request), DAYS.get(request))
    return json_response(data)
