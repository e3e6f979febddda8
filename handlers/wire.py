"""A response written in one piece, for the loader check (the hot path).

aiohttp prepares every response through several coroutine layers (header defaults, the
``Content-Length``/``Connection`` rules, the response signals, the C header writer, the
write-EOF chain): timed under ``make bench``'s load, ~9 us to prepare and ~4 us of Python
around the socket write, per response, on a 2-core VM. The loader check knows its answer in
full, so :class:`WireResponse` joins the status line, the headers and the body into one
``bytes`` and gives it to the connection's writer in one call (+12 % loader checks per second
in paired rounds against ``web.Response``).

Only where that is exactly what aiohttp would send: HTTP/1.1 with keep-alive, a body allowed,
no cookies, compression or chunking. Anything else (HTTP/1.0, ``Connection: close``, HEAD, ...)
goes through aiohttp's own path, so the bytes on the wire never differ, only their cost
(tests/test_wire.py compares the two). The app's ``on_response_prepare`` receivers run on both
paths (leaf7's one, the dashboard's security headers, acts on the dashboard's paths only; the
rate-limit headers are added by ``vendor_route`` and the error middleware, see
handlers/ratelimit.py).
"""

import time
from collections.abc import Callable
from email.utils import formatdate

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import HttpVersion11

from handlers import aiohttp_internals

# The Server header names no versions (nothing to look vulnerabilities up by). aiohttp adds
# its own, with versions, to every response it prepares (errors of the HTTP parser too): the
# value it uses is set here, once for the process.
SERVER = "leaf7"
aiohttp_internals.set_server_header(SERVER)
_SERVER = SERVER.encode()
_CRLF_ERROR = (
    "Newline or carriage return character detected in HTTP status message or header. "
    "This is a potential security issue."
)


class PerSecond:
    """A text that depends only on the second: formatted once per second, not per request."""

    __slots__ = ("_format", "_second", "_text")

    def __init__(self, format_: Callable[[int], str]) -> None:
        self._format = format_
        self._second = -1
        self._text = ""

    def __call__(self, second: int) -> str:
        if second != self._second:
            self._text = self._format(second)
            self._second = second
        return self._text


_http_date = PerSecond(lambda second: formatdate(second, usegmt=True))


def http_date() -> str:
    """The Date header (as aiohttp formats it)."""
    return _http_date(int(time.time()))


class WireResponse(web.StreamResponse):
    """A 200 answer whose headers the handler knows: ``head`` is them as ``Name: value`` lines,
    each ending in CRLF, formatted by the caller from values it controls (no CR or LF inside).
    ``headers`` starts empty and takes what middlewares add (``X-Request-ID``); those are
    checked when written, after ``head`` (a name in both would be sent twice). Content-Length,
    Date and Server are added as aiohttp adds them."""

    def __init__(self, head: bytes, body: bytes) -> None:
        super().__init__()
        self._head = head
        self._payload = body
        self._wire: bytes | None = None  # the whole response, once prepared for one write
        self._writer: AbstractStreamWriter | None = None  # the connection's; None once sent
        self._empty = False  # the request or status allows no body (HEAD, 204, 304, 1xx)

    @property
    def prepared(self) -> bool:
        return self._wire is not None or super().prepared

    @property
    def keep_alive(self) -> bool | None:
        return True if self._wire is not None else super().keep_alive

    @property
    def body_length(self) -> int:
        return len(self._wire) if self._wire is not None else super().body_length

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._wire is not None:
            return self._writer
        if super().prepared:  # on aiohttp's path already: its prepare answers
            return await super().prepare(request)
        status = self.status
        self._empty = request.method == "HEAD" or status < 200 or status in (204, 304)
        if (
            self._empty
            or request.version != HttpVersion11
            or not request.keep_alive
            or self.chunked
            or self.compression
            or aiohttp_internals.has_cookies(self)
        ):
            return await self._prepare_aiohttp(request)
        if isinstance(request, web.Request):  # what aiohttp's prepare runs before the headers
            for app in request.match_info.apps:
                if app.on_response_prepare:
                    await app.on_response_prepare.send(request, self)
        parts = [f"HTTP/1.1 {status} {self.reason}\r\n".encode(), self._head]
        headers = self.headers
        if headers:
            extra = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
            # One CR and one LF per line, no more: no value smuggles in a header or a body.
            if extra.count("\r") != len(headers) or extra.count("\n") != len(headers):
                raise ValueError(_CRLF_ERROR)
            parts.append(extra.encode())
        parts.append(b"Content-Length: %d\r\nDate: %s\r\nServer: %s\r\n\r\n" % (
            len(self._payload), http_date().encode(), _SERVER))  # fmt: skip
        parts.append(self._payload)
        self._wire = b"".join(parts)
        self._writer = request.writer
        return self._writer

    async def _prepare_aiohttp(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """aiohttp's own path (its rules for the connection and the body length apply), with
        ``head``'s headers before those added since, as the one-write path orders them."""
        added = list(self.headers.items())
        headers = self.headers
        headers.clear()
        for line in self._head.decode().split("\r\n")[:-1]:
            name, _, value = line.partition(": ")
            headers.add(name, value)
        headers.extend(added)
        self.content_length = len(self._payload)
        return await super().prepare(request)

    async def write_eof(self, data: bytes = b"") -> None:
        assert not data, "a WireResponse carries its own body"
        if self._wire is None:  # aiohttp's path
            await super().write_eof(b"" if self._empty else self._payload)
            return
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.write(self._wire)  # one write; waits only if the client reads slowly
            await writer.write_eof()
