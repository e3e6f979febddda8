"""Helpers every handler shares: JSON in and out, errors, vendor authentication."""

import functools
import ipaddress
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from handlers import ids, ratelimit
from handlers.appkeys import SETTINGS, STORE
from handlers.errors import ApiError, body_too_large, malformed_json
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
    Content-Length is checked before reading, a chunked body while it streams in."""
    length = request.content_length
    if length is not None:
        if length > limit:
            raise body_too_large(limit)
        content = request.content
        if content.is_eof():  # all of it arrived with the headers (a loader's small body)
            return content.read_nowait()
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
    ``::1``, ``[::1]:567``); IPv4-mapped IPv6 becomes IPv4. None when it is not one."""
    value = value.strip()
    if value.startswith("["):  # [v6] or [v6]:port
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # v4:port
        value = value.partition(":")[0]
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


@functools.lru_cache(maxsize=8192)
def rate_subject(ip: str) -> str:
    """What per-IP limits count: the address, or its /64 for IPv6 (one host usually has a
    whole /64, so counting single IPv6 addresses would be no limit at all)."""
    if ":" in ip:
        try:
            return str(ipaddress.IPv6Network(f"{ip}/64", strict=False).network_address) + "/64"
        except ValueError:
            return ip
    return ip


def store(request: web.Request) -> Store:
    return request.app[STORE]


def project_id_param(value: str | None) -> str:
    """A project_id from a path or query. Anything that is not a UUID cannot name a project."""
    if value is None or not ids.PROJECT_ID.valid(value):
        raise ProjectNotFound
    return value


def key_id_param(request: web.Request) -> str:
    value = request.match_info["key_id"]
    if not ids.KEY_ID.valid(value):
        raise KeyNotFound
    return value


VendorHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def vendor_route(fn: VendorHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
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
        vendor_id, rl = found
        if rl.remaining >= 0:  # -1: no limit
            ratelimit.check(request, rl)
        response = await fn(request, vendor_id)
        ratelimit.add_rate_headers(request, response)  # (errors: the error middleware adds them)
        return response

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    handler.__module__ = fn.__module__
    handler.__vendor__ = True  # type: ignore[attr-defined]  # OpenAPI: bearer security
    return handler
