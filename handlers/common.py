"""Helpers every handler shares: JSON in and out, errors, vendor authentication."""

import asyncio
import functools
import ipaddress
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from handlers import ids, ratelimit
from handlers.appkeys import SETTINGS, STORE
from handlers.errors import ApiError, body_timeout, body_too_large, malformed_json
from handlers.openapi import Param, operation
from store import KeyNotFound, ProjectNotFound, Store

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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=8192)  # a pure function of the text; peers repeat
def _parse_ip(value: str) -> IPAddress | None:
    """An address from a peer or an X-Forwarded-For entry (``1.2.3.4``, ``1.2.3.4:567``,
    ``::1``, ``[::1]:567``); IPv4-mapped IPv6 becomes IPv4, a zone (``fe80::1%eth0``) is
    dropped. None when it is not one."""
    value = value.strip()
    if value.startswith("["):  # [v6] or [v6]:port
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # v4:port
        value = value.partition(":")[0]
    value = value.partition("%")[0]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(
    ip: IPAddress, proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    return any(ip.version == net.version and ip in net for net in proxies)


def client_ip(request: web.Request) -> str:
    """The client's IP address: the peer, or, only when the peer is a trusted proxy
    (LEAF7_TRUSTED_PROXIES), the right-most address of X-Forwarded-For that is not a trusted
    proxy. Entries left of that one were written by the client and are never believed. When
    every entry is trusted (or one cannot be parsed) the left-most trusted address reached is
    used. A peer without an IP address (a unix socket) is ``"unix"``."""
    remote = request.remote or ""
    proxies = request.app[SETTINGS].trusted_proxies
    if not proxies:
        return _peer_text(remote)
    peer = _parse_ip(remote)
    if peer is None:
        return "unix"
    if not _trusted(peer, proxies):
        return str(peer)
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", ()))
    current = peer
    for entry in reversed(forwarded.split(",")):
        if not entry.strip():
            continue
        ip = _parse_ip(entry)
        if ip is None:
            break
        current = ip
        if not _trusted(ip, proxies):
            break
    return str(current)


@functools.lru_cache(maxsize=8192)
def _peer_text(remote: str) -> str:
    peer = _parse_ip(remote)
    return "unix" if peer is None else str(peer)


def rate_subject(ip: str) -> str:
    """What per-IP limits count: the address, or its /64 for IPv6 (one host usually has a
    whole /64, so counting single IPv6 addresses would be no limit at all)."""
    return rate_subjects(ip)[0]


@functools.lru_cache(maxsize=8192)
def rate_subjects(ip: str) -> tuple[str, str | None]:
    """(``rate_subject(ip)``, the IPv6 /48 that the brute-force defence also counts, or None:
    IPv4 and anything else). One cached look-up per check."""
    if ":" in ip:
        try:
            net64 = ipaddress.IPv6Network(f"{ip}/64", strict=False).network_address
            net48 = ipaddress.IPv6Network(f"{ip}/48", strict=False).network_address
        except ValueError:
            return ip, None
        return f"{net64}/64", f"{net48}/48"
    return ip, None


def store(request: web.Request) -> Store:
    return request.app[STORE]


def project_id_param(value: str | None) -> str:
    """A project_id from a path or query. Anything that is not a UUID cannot name a project."""
    if value is None or not ids.PROJECT_ID.valid(value):
        raise ProjectNotFound
    return value


# The optional ``project_id`` query parameter of the routes that list or count across projects.
PROJECT_QUERY = Param(
    "project_id",
    ids.PROJECT_ID.json_schema(),
    "Only this project (a UUID; any other value: 404)",
    errors=(404,),
)


def project_query(request: web.Request) -> str | None:
    """The optional ``project_id`` query parameter (PROJECT_QUERY): None when absent."""
    value = request.query.get("project_id")
    return None if value is None else project_id_param(value)


def required_query(request: web.Request, name: str) -> str:
    """A query parameter the route cannot do without: 422 when it is absent."""
    value = request.query.get(name)
    if value is None:
        raise ApiError(422, f"{name}: query parameter is required")
    return value


def key_id_param(request: web.Request) -> str:
    value = request.match_info["key_id"]
    if not ids.KEY_ID.valid(value):
        raise KeyNotFound
    return value


# The digest of the API key an authenticated vendor request used (who may rotate keys).
API_KEY_DIGEST = web.RequestKey("api_key_digest", str)

VendorHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def vendor_route(fn: VendorHandler) -> Route:
    """Authenticates ``Authorization: Bearer <API key>`` and passes the vendor_id on."""

    async def handler(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        found = None
        if scheme.lower() == "bearer" and token and len(token) <= 256:
            settings = request.app[SETTINGS]
            found = await store(request).vendors.authenticate_limited(
                token, settings.rate_vendor, settings.rate_window
            )
        if found is None:
            raise ApiError(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
        request[API_KEY_DIGEST] = found.digest
        if found.rate.remaining >= 0:  # -1: no limit
            ratelimit.check(request, found.rate)
        response = await fn(request, found.vendor_id)
        ratelimit.add_rate_headers(request, response)  # (errors: the error middleware adds them)
        return response

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    handler.__module__ = fn.__module__
    handler.__vendor__ = True  # type: ignore[attr-defined]  # OpenAPI: bearer security
    return handler


def vendor_operations(tag: str) -> Callable[..., Callable[[VendorHandler], Route]]:
    """The decorator of one area's vendor routes: ``@route(summary, responses, **kw)`` is the
    route's ``@operation`` (tagged ``tag`` unless ``kw`` has its own ``tags``) over
    ``vendor_route``."""

    def route(
        summary: str, responses: dict[int, Any], **kw: Any
    ) -> Callable[[VendorHandler], Route]:
        def wrap(fn: VendorHandler) -> Route:
            return operation(summary, responses, **{"tags": (tag,), **kw})(vendor_route(fn))

        return wrap

    return route
