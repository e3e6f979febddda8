"""Helpers every handler shares: JSON in and out, errors, vendor authentication."""

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from service.appkeys import SETTINGS, STORE
from store import Store

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
KEY_ID_RE = re.compile(r"[A-Za-z0-9]{1,128}")
DISCORD_ID_RE = re.compile(r"[0-9]{1,20}")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ApiError(Exception):
    """An error with its HTTP status and ``detail`` message."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_encoder.encode(data), status=status, content_type="application/json", headers=headers
    )


def json_error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=_encoder.encode({"detail": detail}),
        status=status,
        content_type="application/json",
        headers=headers,
    )


SUCCESS = {"status": "success"}


def body_too_large(limit: int) -> ApiError:
    # The contract groups oversized bodies with the other rejected bodies (400).
    return ApiError(400, f"body: request body too large (limit {limit} bytes)")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused (400) as soon as it passes ``limit`` bytes: a declared
    Content-Length is checked before reading, a chunked body while it streams in."""
    length = request.content_length
    if length is not None:
        if length > limit:
            raise body_too_large(limit)
        return await request.read()  # exactly Content-Length bytes, in one call
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(
    request: web.Request, decoder: msgspec.json.Decoder[T], limit: int | None = None
) -> T:
    """Decodes the body with a prebuilt decoder: malformed JSON -> 400, invalid fields -> 422,
    a body over the route's limit (default LEAF7_MAX_BODY) -> 400."""
    body = await read_body(request, request.app[SETTINGS].max_body if limit is None else limit)
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ApiError(422, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"Malformed JSON body: {exc}") from None


def store(request: web.Request) -> Store:
    return request.app[STORE]


def project_id_param(value: str | None) -> str:
    """A project_id from a path or query. Anything that is not a UUID cannot name a project."""
    if value is None or not UUID_RE.fullmatch(value):
        from store import ProjectNotFound

        raise ProjectNotFound
    return value


def key_id_param(request: web.Request) -> str:
    value = request.match_info["key_id"]
    if not KEY_ID_RE.fullmatch(value):
        from store import KeyNotFound

        raise KeyNotFound
    return value


VendorHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def vendor_route(fn: VendorHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Authenticates ``Authorization: Bearer <API key>`` and passes the vendor_id on."""

    async def handler(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        vendor_id = None
        if scheme.lower() == "bearer" and token and len(token) <= 256:
            vendor_id = await store(request).authenticate(token)
        if vendor_id is None:
            raise ApiError(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
        return await fn(request, vendor_id)

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler
