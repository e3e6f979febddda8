"""Rate-limit answers: 429 ``{"detail": "Too many requests"}`` with ``Retry-After`` and the
``X-RateLimit-*`` headers, which every response of a limited route also carries.

``X-RateLimit-Limit`` is the window's allowance, ``X-RateLimit-Remaining`` what is left of it,
``X-RateLimit-Reset`` the Unix time (seconds) when the window ends.
"""

from aiohttp import web

from handlers.errors import ApiError
from store.models import RateLimit

# The RateLimit whose headers the response carries.
RATE = web.RequestKey("rate", RateLimit)
TOO_MANY = "Too many requests"


LIMIT, REMAINING, RESET = "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"


def rate_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {LIMIT: str(limit), REMAINING: str(max(0, remaining)), RESET: str(reset)}


def too_many(limit: int, reset: int, retry_after: int) -> ApiError:
    headers = rate_headers(limit, 0, reset)
    headers["Retry-After"] = str(max(1, retry_after))
    return ApiError(429, TOO_MANY, headers)


def check(request: web.Request, rl: RateLimit) -> None:
    """Records ``rl`` for the response headers; raises 429 when it refused the request."""
    request[RATE] = rl
    if not rl.allowed:
        raise too_many(rl.limit, rl.reset, rl.retry_after)


def add_rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The X-RateLimit-* headers of the request's limit (see ``check``) on its answer, unless the
    answer set its own: called on a limited route's success (``vendor_route``) and on any error
    answer (the error middleware). Not a response signal: signals run for every response, and
    the loader check's answer (handlers/wire.py) is cheaper without them."""
    rl: RateLimit | None = request.get(RATE)
    if rl is None:
        return
    for name, value in rate_headers(rl.limit, rl.remaining, rl.reset).items():
        response.headers.setdefault(name, value)
