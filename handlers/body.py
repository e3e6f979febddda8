"""Request and response bodies: JSON in and out, body limits, the JSON depth check."""

import asyncio
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from handlers.appkeys import SETTINGS
from handlers.errors import ApiError, body_timeout, body_too_large, malformed_json

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


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


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused (400) as soon as it passes ``limit`` bytes: a declared
    Content-Length is checked before reading, a chunked body while it streams in. A body that
    has not fully arrived within LEAF7_BODY_TIMEOUT is 408 (and the connection closed)."""
    length = request.content_length
    if length is not None:
        if length > limit:
            raise body_too_large(limit)
        content = request.content
        if content.is_eof():  # all of it arrived with the headers (a loader's small body)
            return content.read_nowait()
    seconds = request.app[SETTINGS].body_timeout
    try:
        async with asyncio.timeout(seconds):
            if length is not None:
                return await request.read()  # exactly Content-Length bytes, in one call
            return await _read_chunked(request, limit)
    except TimeoutError:
        raise body_timeout(seconds) from None


async def _read_chunked(request: web.Request, limit: int) -> bytes:
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
    check_depth(body)
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        if "got `float`" not in str(exc):
            raise ApiError(422, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise malformed_json(exc) from None
    # JSON has one number type: an integer may be written 140.0 (JSON Schema's "integer"
    # includes it). Only on this error path: take integral floats as integers and validate
    # again with the same typed decoder (1.5 is still refused, and so are strings like "140").
    try:
        return decoder.decode(msgspec.json.encode(_integral(msgspec.json.decode(body))))
    except msgspec.ValidationError as exc:
        raise ApiError(422, str(exc)) from None


# JSON nested deeper than this is refused before it is decoded (msgspec would recurse until
# Python's recursion limit, a RecursionError: a 500 with a traceback, per request).
MAX_DEPTH = 32
# A JSON string (brackets inside one do not nest anything): the unrolled form, linear in C.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_RUNS = re.compile(rb"[\[{]+|[\]}]+")
# Arrays and objects in one body at most (no request of the API comes near: an import of
# 1,000 keys has ~2,000), so the depth scan below stays a few milliseconds.
MAX_CONTAINERS = 32768


def check_depth(body: bytes) -> None:
    """400 ``Malformed JSON body`` when ``body`` nests arrays/objects deeper than MAX_DEPTH
    (or holds more than MAX_CONTAINERS of them). Free for small bodies (fewer brackets than
    the limit); otherwise strings are cut out in C and the depth followed run by run."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if len(brackets) > 2 * MAX_CONTAINERS:
        raise malformed_json(f"more than {MAX_CONTAINERS} arrays and objects")
    depth = 0
    for run in _RUNS.findall(brackets):
        depth += len(run) if run[0] in b"[{" else -len(run)
        if depth > MAX_DEPTH:
            raise malformed_json(f"nested deeper than {MAX_DEPTH} levels")


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value
