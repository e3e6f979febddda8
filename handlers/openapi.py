"""The OpenAPI 3.1 document, generated from the route table and the msgspec structs.

Each handler carries its operation's description (``@operation``): summary, request body
struct, response structs per status, query parameters. ``document(app)`` walks the app's
routes, takes the path parameters from the path, adds the error responses every route of its
kind can give (``{"detail"}`` bodies: 400/422 for bodies, 401/429 for vendor routes, 404 for
path parameters, 503 when Redis is down) and the schemas from
``msgspec.json.schema_components``. Nothing is written by hand, so it cannot drift.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
import orjson
from aiohttp import web

from handlers import ids
from handlers.appkeys import SETTINGS, HttpSettings
from handlers.errors import UNAVAILABLE

H = TypeVar("H", bound=Callable[..., Any])
REF = "#/components/schemas/{name}"
_PARAM_RE = re.compile(r"\{(\w+)\}")


class ErrorDetail(msgspec.Struct):
    """Every error: a human-readable message."""

    detail: str


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str = ""
    where: str = "query"
    required: bool = False
    errors: tuple[int, ...] = ()  # what a bad value gets: added to each operation's statuses


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: dict[int, Any]  # status -> type (struct, list[...]) or None (no body)
    body: Any = None  # a request struct, or a function of the settings returning one
    body_required: bool = True  # False: the request may have no body at all
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()  # statuses beyond the ones every route of its kind has
    invalid_body: tuple[int, ...] = (400, 422)  # malformed JSON; valid JSON, wrong shape
    description: str = ""
    media_type: str = "application/json"  # of the success responses
    tags: tuple[str, ...] = ()
    limited: bool = False  # rate limited (429) outside the vendor API
    redis: bool = True  # touches Redis (503 when it is down)
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)  # of the success responses


def operation(summary: str, responses: dict[int, Any], **kw: Any) -> Callable[[H], H]:
    """Attaches an operation's description to a handler (outermost decorator)."""

    def attach(fn: H) -> H:
        fn.__openapi__ = Operation(summary, responses, **kw)  # type: ignore[attr-defined]
        return fn

    return attach


# Each path parameter: its schema and description (every one is required, in the path).
_PATH: dict[str, tuple[dict[str, Any], str]] = {
    "project_id": (
        ids.PROJECT_ID.json_schema(),
        "A project's id (a UUID); any other value cannot name a project (404).",
    ),
    "key_id": (ids.KEY_ID.json_schema(), "A key's id; any other value cannot name a key (404)."),
    "discord_id": (
        ids.DISCORD_ID.json_schema(),
        "A Discord user's id (a snowflake: digits); any other value is 422.",
    ),
    "entry_id": ({"type": "string", "maxLength": 64}, "A blacklist entry's id."),
    "integration_id": (
        ids.INTEGRATION_ID.json_schema(),
        "A store integration's id; any other value cannot name one (404).",
    ),
}
PATH_PARAMS: dict[str, Param] = {
    name: Param(name, schema, text, where="path", required=True)
    for name, (schema, text) in _PATH.items()
}

_RATE_HEADERS = {
    "X-RateLimit-Limit": ("integer", "Requests allowed in the window"),
    "X-RateLimit-Remaining": ("integer", "Requests left in the window"),
    "X-RateLimit-Reset": ("integer", "Unix time (seconds) when the window ends"),
}

_ERRORS = {
    400: "Malformed request (or body too large)",
    401: "Missing or unknown API key",
    403: "Forbidden",
    404: "Not found",
    409: "Conflicts with the resource's state",
    422: "Valid JSON of the wrong shape; `detail` names the field",
    429: "Too many requests",
    503: UNAVAILABLE,
}


def _headers(required: bool, retry_after: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if retry_after:
        out["Retry-After"] = {
            "description": "Seconds to wait before trying again",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    for name, (kind, text) in _RATE_HEADERS.items():
        out[name] = {"description": text, "required": required, "schema": {"type": kind}}
    return out


def _operations(app: web.Application) -> list[tuple[str, str, Callable[..., Any], Operation]]:
    out = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or (path.endswith("/") and path != "/"):
            continue  # the trailing-slash twin of a documented path
        if path in ("/", "/favicon.ico", "/dashboard") or path.startswith("/dashboard/"):
            continue  # the dashboard's HTML pages and icon (handlers/dashboard/) are not the API
        if path.startswith("/getkey/"):
            continue  # the players' get-key pages and LootLabs' postback (docs/free-keys.md)
        op: Operation | None = getattr(route.handler, "__openapi__", None)
        if op is None:
            raise RuntimeError(f"{route.method} {path} has no @operation")
        out.append((route.method, path, route.handler, op))
    return out


def document(app: web.Application) -> dict[str, Any]:
    settings: HttpSettings = app[SETTINGS]
    ops = _operations(app)
    types: list[Any] = [ErrorDetail]
    for _, _, _, op in ops:
        if op.body is not None:
            types.append(_body_type(op, settings))
        types += [t for t in op.responses.values() if t is not None and t is not str]
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    resolved = dict(zip(map(_key, types), schemas, strict=True))
    error_ref = resolved[_key(ErrorDetail)]

    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler, op in ops:
        vendor = bool(getattr(handler, "__vendor__", False))
        item: dict[str, Any] = {
            "operationId": handler.__module__.rsplit(".", 1)[-1] + "_" + handler.__name__,
            "summary": op.summary,
        }
        if op.description:
            item["description"] = op.description
        if op.tags:
            item["tags"] = list(op.tags)
        params = [PATH_PARAMS[name] for name in _PARAM_RE.findall(path)] + list(op.query)
        if params:
            item["parameters"] = [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required,
                    "schema": p.schema,
                    **({"description": p.description} if p.description else {}),
                }
                for p in params
            ]
        if op.body is not None:
            item["requestBody"] = {
                "required": op.body_required,
                "content": {
                    "application/json": {"schema": resolved[_key(_body_type(op, settings))]}
                },
            }
        limited = vendor or op.limited
        responses: dict[str, Any] = {}
        for status, typ in op.responses.items():
            resp: dict[str, Any] = {"description": "Success" if status < 300 else _ERRORS[status]}
            if typ is str:
                resp["content"] = {op.media_type: {"schema": {"type": "string"}}}
            elif typ is not None:
                resp["content"] = {op.media_type: {"schema": resolved[_key(typ)]}}
            if limited and status < 300:
                resp["headers"] = _headers(required=False, retry_after=False)
            elif status == 429:  # a route's own 429 (e.g. a cooldown) also says when to retry
                resp["headers"] = _headers(required=False, retry_after=True)
            if op.headers and status < 300:
                resp["headers"] = {**resp.get("headers", {}), **op.headers}
            responses[str(status)] = resp
        statuses = set(op.errors).union(*(p.errors for p in op.query))
        if op.body is not None:
            statuses |= set(op.invalid_body)
        if vendor:
            statuses |= {401, 429}
        if limited:
            statuses.add(429)
        if any(p.where == "path" for p in params):
            statuses.add(404)
        if op.redis:
            statuses.add(503)
        for status in sorted(statuses - set(op.responses)):
            err: dict[str, Any] = {
                "description": _ERRORS[status],
                "content": {"application/json": {"schema": error_ref}},
            }
            if status == 429:
                err["headers"] = _headers(required=True, retry_after=True)
            if status == 401:
                err["headers"] = {
                    "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}
                }
            responses[str(status)] = err
        item["responses"] = responses
        if vendor:
            item["security"] = [{"bearerAuth": []}]
        paths.setdefault(path, {})[method.lower()] = item

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "leaf7",
            "version": "1.0.0",
            "description": "Licence keys for Lua script vendors. Vendor routes need "
            '`Authorization: Bearer <API key>`; errors are `{"detail": "..."}`. Every path '
            "also answers with a trailing slash.",
        },
        "servers": [{"url": settings.public_url or "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "API key"}
            },
        },
    }


def _body_type(op: Operation, settings: HttpSettings) -> Any:
    if isinstance(op.body, type):
        return op.body
    return op.body(settings)


def _key(typ: Any) -> str:
    return repr(typ)


# ---- routes -----------------------------------------------------------------------------------


@operation(
    "This document: OpenAPI 3.1",
    {200: dict[str, Any]},
    tags=("docs",),
    redis=False,
)
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(document(request.app)), content_type="application/json")


@operation(
    "The API explorer (Swagger UI): every operation, tried with a pasted API key",
    {200: str},
    media_type="text/html",
    tags=("docs",),
    redis=False,
)
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=EXPLORER, content_type="text/html")


# The explorer's page: Swagger UI, vendored in handlers/dashboard/static/explorer/ (no CDN), set
# up by explorer.js; no inline script or style (the dashboard's CSP, docs/security.md).
EXPLORER = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>leaf7 API</title>
<link rel="icon" href="/dashboard/static/favicon.svg" type="image/svg+xml">
<link rel="icon" href="/favicon.ico" sizes="16x16 32x32 48x48">
<link rel="stylesheet" href="/dashboard/static/explorer/swagger-ui.css">
<link rel="stylesheet" href="/dashboard/static/explorer/explorer.css">
<script src="/dashboard/static/explorer/swagger-ui-bundle.js" defer></script>
<script src="/dashboard/static/explorer/explorer.js" defer></script>
</head>
<body>
<header class="l7-top"><a href="/dashboard/">leaf7</a> API
· <a href="/openapi.json">openapi.json</a> · vendor routes: <b>Authorize</b>,
then paste your API key (<code>l7_…</code>)</header>
<noscript><p>The explorer needs JavaScript; the API is described in
<a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p></noscript>
<div id="swagger-ui"></div>
</body>
</html>
"""
