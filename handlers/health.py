"""Liveness and readiness."""

from aiohttp import web
from redis.exceptions import TimeoutError as RedisTimeoutError

from handlers.common import json_error, json_response, store
from service.observability import METRICS
from store import StoreUnavailable


async def healthz(request: web.Request) -> web.Response:
    """Liveness: answers without touching Redis."""
    return json_response({"status": "ok"})


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
