"""Vendor authentication of the API: ``Authorization: Bearer <API key>`` (``vendor_route``)
and an area's ``@route`` (``vendor_operations``)."""

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from handlers import ratelimit
from handlers.appkeys import SETTINGS, store
from handlers.errors import ApiError
from handlers.openapi import operation

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
