"""Operations: liveness, readiness and the Prometheus metrics."""

import hmac
import os

from aiohttp import web
from redis.exceptions import TimeoutError as RedisTimeoutError

from handlers import schemas
from handlers.appkeys import METRICS, SETTINGS, store
from handlers.body import json_error, json_response
from handlers.errors import UNAVAILABLE, ApiError
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
    "Prometheus metrics",
    {200: str},
    media_type="text/plain",
    errors=(401,),
    description="With LEAF7_METRICS_TOKEN set, only with `Authorization: Bearer <token>`; "
    "without it, open: keep it off the public listener then.",
    tags=("operations",),
    redis=False,
)
async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    token = request.app[SETTINGS].metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Compared in constant time, as bytes (a str compare refuses non-ASCII).
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise ApiError(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
