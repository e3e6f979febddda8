"""The private internals of redis-py (and of asyncio's streams) the store relies on, reached
only through here: the auto-pipeline (store/autopipe.py) writes to a connection's stream and
parses its replies itself, and INFO comes back from it as text. tests/test_redis_internals.py
checks that each one is still there, with the shape used here, so a redis-py upgrade that
moves one fails there, loudly, instead of slowing or breaking the loader check."""

import asyncio
from collections.abc import Callable
from typing import Any

from redis._parsers.helpers import parse_info as _parse_info
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError


def stream_writer(conn: AbstractConnection | None) -> asyncio.StreamWriter | None:
    """The connection's stream writer (``_writer``): None before it connects, after it is
    lost, or for no connection."""
    writer: asyncio.StreamWriter | None = getattr(conn, "_writer", None)
    return writer


def stream_reader(conn: AbstractConnection) -> object:
    """The connection's stream reader (``_reader``): an ``asyncio.StreamReader`` on a socket;
    anything else (None, fakeredis' own) is not taken over."""
    return getattr(conn, "_reader", None)


def buffered(stream: asyncio.StreamReader) -> bool:
    """Whether the stream holds bytes not read yet (its ``_buffer``)."""
    return bool(stream._buffer)  # type: ignore[attr-defined]


def error_parser(conn: AbstractConnection) -> Callable[[str], ResponseError]:
    """The connection's own mapping of an error reply to its exception (``NOSCRIPT`` to
    ``NoScriptError``, ...): its parser's ``parse_error``."""
    parse: Callable[[str], ResponseError] = conn._parser.parse_error
    return parse


def parse_info(reply: str) -> dict[str, Any]:
    """An INFO reply's text as redis-py's own ``info()`` parses it."""
    info: dict[str, Any] = _parse_info(reply)  # type: ignore[no-untyped-call]
    return info
