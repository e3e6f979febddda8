"""Liveness and readiness."""

import os

from aiohttp import web

from handlers import schemas
from handlers.common import json_error, json_response, store
from handlers.openapi import operation


@operation("Liveness: answers without touching Redis", {200: schemas.Health}, redis=False)
async def healthz(request: web.Request) -> web.Response:
    """Liveness: answers without touching Redis. ``X-Leaf7-Worker`` names the process that
    answered (which worker of ``--workers N`` is alive)."""
    resp = json_response({"status": "ok"})
    resp.headers["X-Leaf7-Worker"] = str(os.getpid())
    return resp


@operation("Readiness: Redis answers PING", {200: schemas.Health})
async def readyz(request: web.Request) -> web.Response:
    """Readiness: Redis answers PING."""
    try:
        await store(request).ping()
    except Exception:
        return json_error(503, "Storage unavailable")
    return json_response({"status": "ok"})
