"""One error middleware: store exceptions and HTTP errors become ``{"detail": ...}`` bodies."""

import asyncio
import logging

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from handlers.appkeys import METRICS, SETTINGS
from handlers.body import json_error, json_response
from handlers.errors import STORE_ERRORS, UNAVAILABLE, ApiError, body_too_large
from handlers.observability import current_request_id, route_label
from handlers.ratelimit import add_rate_headers
from store import errors

log = logging.getLogger(f"leaf7.{__name__}")


class _ClosingAnswer(web.Response):
    """An error answer after which the connection is closed at once: not kept alive, and no
    lingering read of a body the client is still trickling in (aiohttp waits up to
    ``lingering_time`` for it otherwise)."""

    def __init__(self, transport: asyncio.BaseTransport | None, exc: ApiError) -> None:
        body = msgspec.json.encode({"detail": exc.detail})
        super().__init__(
            body=body, status=exc.status, content_type="application/json", headers=exc.headers
        )
        self._transport = transport
        self.force_close()

    async def write_eof(self, data: bytes = b"") -> None:
        await super().write_eof(data)
        if self._transport is not None:
            self._transport.close()  # after the answer is flushed


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as exc:
        response = _error_answer(request, exc)
    add_rate_headers(request, response)  # a limited route's errors carry its limit too
    return response


def _error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The ``{"detail": ...}`` answer for ``exc``; HTTP exceptions under 400 (redirects) are
    raised again, to aiohttp."""
    if isinstance(exc, ApiError):
        if exc.close:
            return _ClosingAnswer(request.transport, exc)
        return json_error(exc.status, exc.detail, exc.headers)
    if isinstance(exc, errors.ResetCooldown):
        status, detail = STORE_ERRORS[errors.ResetCooldown]
        return json_response(
            {"detail": detail, "retry_after": exc.retry_after},
            status=status,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, errors.StoreUnavailable):  # the store's own time bound, or fsync
        return _unavailable(request, "timeout", exc)
    if isinstance(exc, errors.StoreError):
        status, detail = STORE_ERRORS[type(exc)]
        return json_error(status, detail)
    if isinstance(exc, RedisTimeoutError):
        return _unavailable(request, "timeout", exc)
    if isinstance(exc, (RedisConnectionError, ConnectionError)):
        return _unavailable(request, "connection", exc)
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        settings = request.app[SETTINGS]
        too_large = body_too_large(max(settings.max_body, settings.max_source))
        return json_error(too_large.status, too_large.detail)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow",)}
        return json_error(exc.status, exc.reason, headers)
    if isinstance(exc, msgspec.ValidationError):
        return json_error(422, str(exc))
    # The route template, never the path: paths carry key ids.
    log.error(
        "unhandled error in %s %s (request %s)",
        request.method,
        route_label(request),
        current_request_id.get(),
        exc_info=exc,
    )
    return json_error(500, "Internal server error")


def _unavailable(request: web.Request, kind: str, exc: BaseException) -> web.Response:
    request.app[METRICS].redis_errors[kind].inc()
    log.warning(
        "storage unavailable (%s: %s) for %s %s (request %s)",
        kind,
        type(exc).__name__,
        request.method,
        route_label(request),
        current_request_id.get(),
    )
    return json_error(503, UNAVAILABLE)
