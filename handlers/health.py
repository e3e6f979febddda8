"""Operations: liveness, readiness and the Prometheus metrics."""

import os

from aiohttp import web
from redis.exceptions import TimeoutError as RedisTimeoutError

from handlers import schemas
from handlers.appkeys import METRICS
from handlers.common import json_error, json_response, store
from handlers.errors import UNAVAILABLE
from handlers.openapi import operation
from store import StoreUnavailable


@operation("Liveness: answers without touching Redis", {200: schemas.Health}, redis=False)
async def healthz(request: web.Request) -> web.Response:
    """Liveness: answers without touching Redis. ``X-Leaf7-Worker`` names the process that
    answered (which worker of ``--workers N`` is alive)."""
    resp = json_response({"status": "ok"})
    resp.headers["X-Leaf7-Worker"] = str(os.getpid())
    return resp


@operation("Readiness: Redis answers PING", {200: schemas.Health})
async def readyz(request: web.Request) -> web.Response:
    """Readiness: Redis answers PING (within LEAF7_REDIS_TIMEOUT)."""
    try:
        await store(request).core.ping()
    except (StoreUnavailable, RedisTimeoutError):
        return _unready(request, "timeout")
    except Exception:
        return _unready(request, "connection")
    return json_response({"status": "ok"})


def _unready(request: web.Request, kind: str) -> web.Response:
    request.app[METRICS].redis_errors[kind].inc()
    return json_error(503, UNAVAILABLE)


@operation(
    "Prometheus metrics (keep off the public listener)",
    {200: str},
    media_type="text/plain",
    tags=("operations",),
    redis=False,
)
async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
