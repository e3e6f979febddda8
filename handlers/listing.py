"""Every list route's paging and streaming, in one place.

A list route hands ``respond`` a function that fetches one page (``cursor``, ``limit``) ->
(items, next cursor) from the store. With ``?limit=`` the answer is that one page, a JSON
array, and the next page's cursor in ``X-Next-Cursor`` (absent on the last page). Without it
the whole list is answered, streamed: a chunked JSON array written page by page as the store
reads it (pages of ``MAX_LIMIT``), so memory stays bounded and the event loop is held for one
page's encoding at a time, however long the list.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from handlers.errors import ApiError
from handlers.observability import REQUEST_ID_HEADER, current_request_id, route_label
from handlers.openapi import Param
from handlers.ratelimit import add_rate_headers
from store.paging import MAX_CURSOR, MAX_LIMIT

log = logging.getLogger(f"leaf7.{__name__}")

NEXT_CURSOR = "X-Next-Cursor"

Fetch = Callable[[str | None, int], Awaitable[tuple[Sequence[Any], str | None]]]

_encoder = msgspec.json.Encoder()
_D = TypeVar("_D")


def limit_param(maximum: int = MAX_LIMIT, default: int | None = None) -> Param:
    text = f"Items per page (1 to {maximum}); the next page's cursor is in X-Next-Cursor"
    schema: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": maximum}
    if default is None:
        text += ". Without it the whole list is returned (streamed)"
    else:
        schema["default"] = default
        text += f" (default {default})"
    return Param("limit", schema, text, errors=(422,))


CURSOR = Param(
    "cursor",
    {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR, "pattern": "^[A-Za-z0-9_-]+$"},
    "Where to continue: the X-Next-Cursor of the previous page (opaque)",
    errors=(422,),
)
PARAMS = (limit_param(), CURSOR)

ORDER = (
    "Paged with limit and cursor (the next page's cursor in X-Next-Cursor, absent on the "
    "last page; a page may hold fewer than limit items). The list comes in index order, each "
    "page sorted by creation; without limit the whole list is streamed."
)

# The success response's extra header, for @operation(headers=...).
NEXT_CURSOR_HEADER = {
    NEXT_CURSOR: {
        "description": "The cursor of the next page; absent on the last page",
        "required": False,
        "schema": {"type": "string"},
    }
}


def paged(*filters: Param) -> dict[str, Any]:
    """The OpenAPI description every paged list route shares, as ``@operation`` keywords:
    its ``filters`` then limit and cursor, the X-Next-Cursor header, the order (ORDER)."""
    return {"query": (*filters, *PARAMS), "headers": NEXT_CURSOR_HEADER, "description": ORDER}


def limit_query(request: web.Request, maximum: int, default: _D) -> int | _D:
    """``?limit=``: 1 to ``maximum`` (else 422), ``default`` when absent."""
    raw = request.query.get("limit")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= maximum):
        raise ApiError(422, f"limit: must be an integer from 1 to {maximum}")
    return int(raw)


def _cursor(request: web.Request) -> str | None:
    raw = request.query.get("cursor")
    if raw is not None and not 0 < len(raw) <= MAX_CURSOR:
        raise ApiError(422, "cursor: not a cursor of this listing")
    return raw


async def respond(
    request: web.Request,
    fetch: Fetch,
    *,
    maximum: int = MAX_LIMIT,
    default: int | None = None,
) -> web.StreamResponse:
    """The answer of a list route: one page with ``?limit=`` (or a ``default``), else the
    whole list, streamed. ``?cursor=`` continues where a previous page stopped."""
    limit = limit_query(request, maximum, default)
    cursor = _cursor(request)
    if limit is not None:
        items, nxt = await fetch(cursor, limit)
        headers = {NEXT_CURSOR: nxt} if nxt is not None else None
        return web.Response(
            body=_encoder.encode(items), content_type="application/json", headers=headers
        )
    # The first page is read before anything is sent, so that its errors (404, 422, 503)
    # are ordinary answers.
    items, nxt = await fetch(cursor, maximum)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    add_rate_headers(request, response)  # (what the middlewares add after the handler
    response.headers[REQUEST_ID_HEADER] = current_request_id.get()  # would come too late)
    await response.prepare(request)
    try:
        await response.write(b"[")
        first = True
        while True:
            if items:
                body = _encoder.encode(items)  # "[...]": the items without the brackets
                await response.write(body[1:-1] if first else b"," + body[1:-1])
                first = False
            if nxt is None:
                break
            items, nxt = await fetch(nxt, maximum)
        await response.write(b"]")
    except Exception as exc:  # the status is sent: all that is left is to cut the answer short
        log.warning(
            "listing cut short (%s) for %s %s (request %s)",
            type(exc).__name__,
            request.method,
            route_label(request),
            current_request_id.get(),
        )
        if request.transport is not None:
            request.transport.abort()  # never the chunked terminator: the body is incomplete
        return response
    await response.write_eof()
    return response
