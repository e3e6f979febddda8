"""The private internals of aiohttp that leaf7 relies on, reached only through here: the
Server header's value, a response's cookie jar unread, whether a connection is handling a
request. tests/test_aiohttp_internals.py checks that each one is still there, with the shape
used here, so an aiohttp upgrade that moves one fails there, loudly, instead of as a Server
header with versions, a loader answer without its cookies, or a shutdown that cuts requests."""

from aiohttp import web, web_response


def set_server_header(value: str) -> None:
    """The Server header of every response aiohttp prepares (its HTTP parser's error answers
    too), for the whole process: aiohttp reads it from ``web_response.SERVER_SOFTWARE``."""
    vars(web_response)["SERVER_SOFTWARE"] = value


def has_cookies(response: web.StreamResponse) -> bool:
    """Whether the response sets cookies, without creating its cookie jar (reading
    ``.cookies`` would): aiohttp's ``_cookies``."""
    return bool(response._cookies)


def request_in_progress(conn: web.RequestHandler) -> bool:
    """Whether the connection is handling a request (aiohttp's own shutdown waits on the same
    flag, ``_request_in_progress``)."""
    return bool(conn._request_in_progress)
