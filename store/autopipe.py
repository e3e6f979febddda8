"""Automatic pipelining: commands issued in the same event-loop tick go to Redis as one write.

The auto-pipeline owns one dedicated redis-py connection (made by the client's pool, so URL,
auth, TLS and decoding are the client's). Every command queued during a tick is packed and
written in one ``writelines`` call at the end of the tick; a reader task reads replies in
order and hands each to the caller that awaits it (Redis answers a connection's commands in
the order it received them). Writing never waits for earlier replies, so concurrent loader
checks share one connection and many checks ride in each round trip. Replies are raw RESP
values (no redis-py response callbacks): HGETALL is a flat list, SMEMBERS a list.
"""

import asyncio
import collections
import contextlib
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
_hiredis_reader: Any
try:
    from hiredis import Reader as _hiredis_reader
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is a dependency
    _hiredis_pack = _hiredis_reader = None

Pending = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class AutoPipeline:
    def __init__(self, client: "Redis") -> None:
        self._client = client
        self._conn: AbstractConnection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: list[Pending] = []
        self._inflight: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._scheduled = False
        self._closed = False
        self.batches = 0  # writes made (each carries one tick's commands)
        self.commands = 0

    def call(self, *args: Any) -> "asyncio.Future[Any]":
        """Queues one command; the future resolves with its reply (or raises its error)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if self._closed:
            fut.set_exception(RedisConnectionError("auto-pipeline is closed"))
            return fut
        self._pending.append((args, fut))
        if not self._scheduled:
            self._scheduled = True
            # call_soon runs after every callback already ready in this tick: all handlers
            # woken by the same poll have queued their commands by then.
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self._scheduled = False
        conn = self._conn
        if conn is None or self._reader is None or self._reader.done():
            if self._connecting is None:
                self._connecting = asyncio.ensure_future(self._connect())
            return  # _connect flushes what is pending once the connection is up
        pending, self._pending = self._pending, []
        if not pending:
            return
        writer = conn._writer  # the stream itself: a sync write keeps order
        if writer is None:
            self._fail(pending, RedisConnectionError("connection to Redis lost"))
            return
        if _hiredis_pack is not None:
            chunks = [_hiredis_pack(args) for args, _ in pending]
        else:
            chunks = conn.pack_commands([args for args, _ in pending])
        # Futures join the in-flight queue in exactly the order their commands are written.
        self._inflight.extend(fut for _, fut in pending)
        writer.writelines(chunks)
        self.batches += 1
        self.commands += len(pending)

    async def _connect(self) -> None:
        try:
            conn = self._client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
            await conn.connect()
        except Exception as exc:
            pending, self._pending = self._pending, []
            self._fail(pending, exc)
            return
        finally:
            self._connecting = None
        self._conn = conn
        self._reader = asyncio.ensure_future(self._read(conn))
        self._flush()

    async def _read(self, conn: AbstractConnection) -> None:
        try:
            stream = getattr(conn, "_reader", None)
            if _hiredis_reader is not None and isinstance(stream, asyncio.StreamReader):
                await self._read_stream(conn, stream, _hiredis_reader)
            else:  # e.g. fakeredis: let the connection parse
                while True:
                    try:
                        reply = await conn.read_response()
                    except ResponseError as exc:  # an error reply: the oldest command's
                        reply = exc
                    self._dispatch(reply)
        except BaseException as exc:  # connection lost: nothing in flight will answer
            self._lost(exc)
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            if not isinstance(exc, Exception):
                raise

    async def _read_stream(
        self, conn: AbstractConnection, stream: asyncio.StreamReader, reader_cls: Any
    ) -> None:
        """Hot path: feed raw socket reads to a hiredis reader, many replies per read."""
        encoder = conn.encoder
        kwargs: dict[str, Any] = {
            "protocolError": InvalidResponse,
            "replyError": conn._parser.parse_error,
            "errors": encoder.encoding_errors,
        }
        if encoder.decode_responses:
            kwargs["encoding"] = encoder.encoding
        parser = reader_cls(**kwargs)
        dispatch = self._dispatch
        while True:
            data = await stream.read(65536)
            if not data:
                raise RedisConnectionError("Redis closed the connection")
            parser.feed(data)
            while (reply := parser.gets()) is not False:
                dispatch(reply)

    def _dispatch(self, reply: Any) -> None:
        """Hands one reply to the oldest command in flight."""
        if not self._inflight:  # cannot happen with a well-behaved server; do not crash
            return
        fut = self._inflight.popleft()
        if fut.done():  # the caller went away (cancelled): the reply is dropped
            return
        if isinstance(reply, Exception):
            fut.set_exception(reply)
        else:
            fut.set_result(reply)

    def _lost(self, exc: BaseException) -> None:
        self._conn = None
        failed = list(self._inflight)
        self._inflight.clear()
        err = exc if isinstance(exc, Exception) else RedisConnectionError("connection closed")
        for fut in failed:
            if not fut.done():
                fut.set_exception(err)
        if self._pending and not self._closed:
            asyncio.get_running_loop().call_soon(self._flush)

    @staticmethod
    def _fail(pending: list[Pending], exc: Exception) -> None:
        for _, fut in pending:
            if not fut.done():
                fut.set_exception(exc)

    def abort(self) -> None:
        """Drops the connection at once (leaf7 issue 6): everything in flight fails as on a lost
        connection and the next call reconnects. The store calls it when the server stopped
        answering on this connection, which otherwise stays open (and stuck) for as long as
        the peer's socket does, e.g. a stopped server replaced behind the same address."""
        writer = getattr(self._conn, "_writer", None)
        if writer is not None:
            writer.transport.abort()  # the reader sees EOF: _lost() runs

    async def drain(self) -> None:
        """Waits until every queued and in-flight command has its reply."""
        while self._pending or self._inflight or self._connecting:
            futs = [f for _, f in self._pending] + list(self._inflight)
            if futs:
                await asyncio.gather(*futs, return_exceptions=True)
            else:
                await asyncio.sleep(0)

    async def close(self) -> None:
        """Drains, then closes the connection (on shutdown)."""
        await self.drain()
        self._closed = True
        reader, self._reader = self._reader, None
        conn, self._conn = self._conn, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        if conn is not None:
            await conn.disconnect()
