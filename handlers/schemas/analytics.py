"""Vendor analytics (handlers/analytics.py), forged-answer reports and executor analytics
(handlers/reports.py, docs/loader-security.md#reports)."""

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from handlers.schemas.base import Body


class Overview(msgspec.Struct):
    active_projects: int
    total_executions: int
    active_keys: int
    api_status: Literal["Operational"]


class ChartStats(msgspec.Struct):
    total_executions: int
    peak: int
    average_per_hour: float


class Chart(msgspec.Struct):
    stats: ChartStats
    chartData: list[int]
    timeLabels: list[str]


# Why a signed loader refused an answer (handlers/luagen.py's verify), the only reasons a
# report may give.
REPORT_REASONS = (
    "unsigned",
    "unknown_kid",
    "wrong_nonce",
    "malformed",
    "stale",
    "wrong_chunk",
    "bad_signature",
)
ReportReason = Literal[
    "unsigned", "unknown_kid", "wrong_nonce", "malformed", "stale", "wrong_chunk", "bad_signature"
]


class ReportRequest(Body):
    project_id: Annotated[str, Meta(max_length=64)]
    reason: ReportReason
    # The executor's name and version, as the loader sends them with its checks.
    executor: Annotated[str, Meta(max_length=100)] | None = None


report_request = msgspec.json.Decoder(ReportRequest)


class ExecutorHour(msgspec.Struct):
    hour: str  # the hour's start, ISO 8601 UTC
    counts: dict[str, int]  # executor name -> valid executions


class Executors(msgspec.Struct):
    """Valid executions by executor over the last ``hours`` hours (UTC), oldest hour first."""

    hours: int
    totals: dict[str, int]  # executor name -> valid executions, most first
    hourly: list[ExecutorHour]


class ReportDay(msgspec.Struct):
    day: str  # YYYY-MM-DD (UTC)
    total: int
    reasons: dict[str, int]  # reason -> reports


class Reports(msgspec.Struct):
    """Forged answers the project's loaders refused and reported, per UTC day, oldest first."""

    days: int
    total: int
    daily: list[ReportDay]
