"""Request ids, Prometheus metrics and structured JSON access logs.

One middleware (the outermost) gives every request an id (``X-Request-ID`` when the client
sent a valid one, else a fresh one), echoes it on every response, and, once the response is
known, counts the request and its latency by route and status and writes one JSON access-log
line. Labels are the route's path template (``/api/vendor/keys/active/{key_id}/ban``), never a
raw path: key ids are secrets and would explode the series count. Nothing from the request's
body, query string or headers other than the request id is logged.

Hot path: one dict lookup finds the cached (counter, histogram) children of a
(route, method, status) triple; the label strings are built once per triple.
"""

import bisect
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from handlers.schemas import VERDICTS
from handlers.signing import Signer
from handlers.wire import PerSecond
from store import Store

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
# The current request's id, for any log line written while it is handled (each request runs
# in a task of its own, so a context variable is per request).
current_request_id: ContextVar[str] = ContextVar("leaf7_request_id", default="-")

# The one logger outside the leaf7.<module> rule (docs/layout.md): a stream of its own.
access_log = logging.getLogger("leaf7.access")

UNMATCHED = "unmatched"  # 404s and 405s: never the raw path
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Latency buckets (seconds): the loader check answers in ~1 ms; storage timeouts take 2 s.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REDIS_ERROR_KINDS = ("connection", "timeout", "other")


def route_label(request: web.Request) -> str:
    """The route's path template, without the trailing slash every route also accepts."""
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED
    canonical: str = resource.canonical
    return canonical[:-1] if len(canonical) > 1 and canonical.endswith("/") else canonical


class _StoreCollector(Collector):
    """Counters the store keeps itself, read at scrape time (nothing on the hot path)."""

    def __init__(
        self,
        get_store: Callable[[], Store | None],
        get_signer: Callable[[], Signer | None] = lambda: None,
    ) -> None:
        self._get_store = get_store
        self._get_signer = get_signer

    def describe(self) -> list[Metric]:
        return []  # nothing to check for clashes: these names are this collector's own

    def collect(self) -> Iterator[Metric]:
        store = self._get_store()
        if store is None:
            return
        pipe = store.core.pipe
        yield CounterMetricFamily(
            "leaf7_autopipe_batches",
            "Writes the auto-pipeline made to Redis (each carries one event-loop tick's commands)",
            value=pipe.batches,
        )
        yield CounterMetricFamily(
            "leaf7_autopipe_commands",
            "Commands sent through the auto-pipeline (commands / batches = mean batch size)",
            value=pipe.commands,
        )
        yield CounterMetricFamily(
            "leaf7_store_timeouts",
            "Store operations that exceeded LEAF7_REDIS_TIMEOUT (answered 503)",
            value=store.core.timeouts,
        )
        fsync = CounterMetricFamily(
            "leaf7_fsync_waits",
            "WAITAOF after vendor writes, by result",
            labels=["result"],
        )
        fsync.add_metric(["fsynced"], store.core.durability.waits)
        fsync.add_metric(["timeout"], store.core.durability.timeouts)
        yield fsync
        signer = self._get_signer()
        if signer is not None:
            yield CounterMetricFamily(
                "leaf7_signed_verdicts",
                "Valid verdicts answered with an Ed25519 signature (docs/loader-security.md)",
                value=signer.leaves,
            )
            yield CounterMetricFamily(
                "leaf7_verdict_signatures",
                "Ed25519 signatures made (signed verdicts / signatures = answers per signature)",
                value=signer.signatures,
            )


class Count:
    """A counter the hot path bumps with a plain ``+= 1``: one event loop per process owns
    it, so prometheus_client's locked values (a lock per increment) buy nothing here."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class _Series:
    """One (route, method, status): its request count and latency histogram."""

    __slots__ = ("buckets", "count", "labels", "route", "total")

    def __init__(self, route: str, labels: tuple[str, str, str]) -> None:
        self.route = route
        self.labels = list(labels)
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)  # per bucket (not cumulative); last: +Inf

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1  # le: seconds <= bound


class _HttpCollector(Collector):
    """The per-request metrics, turned into Prometheus families at scrape time."""

    def __init__(self, metrics: "Metrics") -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        labels = ["route", "method", "status"]
        requests = CounterMetricFamily(
            "leaf7_http_requests",
            "HTTP requests answered, by route template, method and status",
            labels=labels,
        )
        latency = HistogramMetricFamily(
            "leaf7_http_request_duration_seconds",
            "Time from the request reaching the app to its response, by route and status",
            labels=labels,
        )
        for series in list(m._series.values()):
            requests.add_metric(series.labels, series.count)
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), series.buckets, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            latency.add_metric(series.labels, buckets, series.total)
        yield requests
        yield latency
        yield _counters(
            "leaf7_execute_verdicts",
            "Loader execution checks answered, by verdict code",
            "code",
            m.verdicts,
        )
        yield _counters(
            "leaf7_redis_errors",
            "Requests that met an unavailable Redis (answered 503), by kind",
            "kind",
            m.redis_errors,
        )


def _counters(name: str, doc: str, label: str, counts: dict[str, Count]) -> Metric:
    """A counter family with one sample per label value."""
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count.value)
    return family


class Metrics:
    """The app's metrics, in a registry of its own (several apps may live in one process)."""

    def __init__(
        self,
        get_store: Callable[[], Store | None],
        get_signer: Callable[[], Signer | None] = lambda: None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.verdicts = {code: Count() for code in VERDICTS}
        self.redis_errors = {kind: Count() for kind in REDIS_ERROR_KINDS}
        self._children: dict[tuple[Any, str, int], _Series] = {}
        self._series: dict[tuple[str, str, str], _Series] = {}
        self.registry.register(_HttpCollector(self))
        self.registry.register(_StoreCollector(get_store, get_signer))
        # Where access-log lines go: None = the "leaf7.access" logger (INFO). ``leaf7 serve``
        # sets a direct writer: Python's logging costs ~10-30 us per request under load.
        self.access_sink: Callable[[str], None] | None = None

    def observe(self, request: web.Request, status: int, seconds: float) -> str:
        """Counts one answered request; returns its route label."""
        resource = request.match_info.route.resource
        key = (resource, request.method, status)
        series = self._children.get(key)
        if series is None:
            route = route_label(request)
            method = request.method if request.method in _METHODS else "OTHER"
            labels = (route, method, str(status))
            # Routes that differ only by a trailing slash share one series.
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = _Series(route, labels)
            self._children[key] = series
        series.observe(seconds)
        return series.route


# Generated ids: a random per-process prefix and a counter (unique, no syscall per request;
# request ids are for correlation, not secrets).
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(1)


def _new_request_id() -> str:
    return f"{_ID_PREFIX}-{next(_id_counter):x}"


_log_second = PerSecond(lambda second: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))


def _timestamp(now: float) -> str:
    """The access log's time, to the millisecond (the seconds formatted once per second)."""
    second = int(now)
    return f"{_log_second(second)}.{int((now - second) * 1000):03d}Z"


def observe_middleware(metrics: Metrics, *, log_requests: bool) -> Any:
    """The outermost middleware: request id, metrics, access log."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        rid = request.headers.get(REQUEST_ID_HEADER)
        if rid is None or not REQUEST_ID_RE.fullmatch(rid):
            rid = _new_request_id()
        current_request_id.set(rid)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            response.headers[REQUEST_ID_HEADER] = rid
            return response
        except web.HTTPException as exc:  # what the error middleware lets through (< 400)
            status = exc.status
            exc.headers[REQUEST_ID_HEADER] = rid
            raise
        except BaseException:  # e.g. the client went away (cancelled): nobody got an answer
            status = 499
            raise
        finally:
            duration = time.perf_counter() - start
            route = metrics.observe(request, status, duration)
            if log_requests:
                sink = metrics.access_sink
                if sink is not None:
                    sink(_access_line(request, route, status, duration, rid))
                elif access_log.isEnabledFor(logging.INFO):
                    access_log.info(_access_line(request, route, status, duration, rid))

    return observe


def _access_line(request: web.Request, route: str, status: int, duration: float, rid: str) -> str:
    return orjson.dumps(
        {
            "time": _timestamp(time.time()),
            "method": request.method if request.method in _METHODS else "OTHER",
            "route": route,
            "status": status,
            "duration_ms": round(duration * 1000, 3),
            "client_ip": request.remote,
            "request_id": rid,
        }
    ).decode()
