"""Liveness and readiness."""

from aiohttp import web

from handlers import schemas
from handlers.common import json_error, json_response, store
from handlers.openapi import operation


@operation("Liveness: answers without touching Redis", {200: schemas.Health}, redis=False)
async def healthz(request: web.Request) -> web.Response:
    """Liveness: answers without touching Redis."""
    return json_response({"status": "ok"})


@operation("Readiness: Redis answers PING", {200: schemas.Health})
async def readyz(request: web.Request) -> web.Response:
    """Readiness: Redis answers PING."""
    try:
        await store(request).ping()
    except Exception:
        return json_error(503, "Storage unavailable")
    return json_response({"status": "ok"})
