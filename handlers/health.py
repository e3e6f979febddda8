"""Liveness and readiness."""

import os

from aiohttp import web
from redis.exceptions import TimeoutError as RedisTimeoutError

from handlers import schemas
from handlers.common import json_error, json_response, store
from handlers.openapi import operation
from service.observability import METRICS
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
        await store(request).ping()
    except (StoreUnavailable, RedisTimeoutError):
        return _unready(request, "timeout")
    except Exception:
        return _unready(request, "connection")
    return json_response({"status": "ok"})


def _unready(request: web.Request, kind: str) -> web.Response:
    request.app[METRICS].redis_errors[kind].inc()
    return json_error(503, "Storage unavailable")
