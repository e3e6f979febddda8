"""Automatic pipelining: commands issued in the same event-loop tick share writes to Redis.

The auto-pipeline owns one dedicated redis-py connection (made by the client's pool, so URL,
auth, TLS and decoding are the client's). Commands queued during a tick are packed and
written in writes of at most ``max_batch`` as they are queued, the rest at the end of the
tick; replies are parsed (hiredis) in the connection's own data callback, in order, and each
goes to the caller that awaits it (Redis answers a connection's commands in the order it
received them). Writing never waits for earlier replies, so concurrent loader
checks share one connection and many checks ride in each round trip. Replies are raw RESP
values (no redis-py response callbacks): HGETALL is a flat list, SMEMBERS a list.

On Redis Cluster, :class:`ClusterAutoPipeline` keeps one such pipeline per primary and routes
each command by its key's slot, following MOVED/ASK/TRYAGAIN; :func:`auto_pipeline` picks the
right one for a client.
"""

import asyncio
import collections
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    InvalidResponse,
    MovedError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from store import redis_internals

log = logging.getLogger(f"leaf7.{__name__}")

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
_hiredis_reader: Any
try:
    from hiredis import Reader as _hiredis_reader
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is a dependency
    _hiredis_pack = _hiredis_reader = None

Pending = tuple[tuple[Any, ...], "asyncio.Future[Any]"]
# Called with (args, future, error, sent) when a command fails; True when the hook took the
# command over (the cluster router retries it elsewhere), False to fail the future. ``sent``
# is False when the command never reached the server (so it surely did not run).
ErrorHook = Callable[[tuple[Any, ...], "asyncio.Future[Any]", Exception, bool], bool]


# Commands per write at most: a tick's commands go out in writes of this many as they are
# queued, so Redis (on another core) starts on the first ones while the rest are still being
# handled, and the replies come back in waves the service can work through while Redis runs
# the next. One write per tick would make the service and Redis take turns (each idle while
# the other works through the whole tick): measured on 2 cores, 4 per write gave ~15 % more
# loader checks per second than unlimited, 1 per write less (a syscall per command).
DEFAULT_MAX_BATCH = 4


class AutoPipeline:
    def __init__(
        self,
        client: "Redis | None" = None,
        *,
        connect: Callable[[], AbstractConnection] | None = None,
        on_error: ErrorHook | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.max_batch = max_batch
        if connect is None:
            if client is None:
                raise TypeError("AutoPipeline needs a client or a connect function")
            connect = client.connection_pool.make_connection
        self._make_connection = connect
        self._on_error = on_error
        self._conn: AbstractConnection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._reader: asyncio.Future[None] | None = None  # done: the connection is gone
        self._pending: list[Pending] = []
        self._inflight: collections.deque[Pending] = collections.deque()
        self._scheduled = False
        self._closed = False
        self.batches = 0  # writes made (each carries one tick's commands)
        self.commands = 0
        # Called soon after each read from the server has handed its replies over, once the
        # callbacks of their futures have run (store/checks.py signs a read's verdicts at once).
        self.on_read: Callable[[], None] | None = None

    def call(self, *args: Any) -> "asyncio.Future[Any]":
        """Queues one command; the future resolves with its reply (or raises its error)."""
        return self.command(args)

    def command(self, args: tuple[Any, ...], flush: bool = False) -> "asyncio.Future[Any]":
        """``call`` with the command as one tuple (the hot path builds it once); ``flush``
        writes what is queued now instead of when the write is full or the tick ends (the
        command is a batch of its own)."""
        # ``queue`` inlined (one call less per command).
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if self._closed:
            fut.set_exception(RedisConnectionError("auto-pipeline is closed"))
            return fut
        pending = self._pending
        pending.append((args, fut))
        if flush or len(pending) >= self.max_batch:
            self._flush()  # a full write goes now; the tick's end flushes the remainder
        elif not self._scheduled:
            self._scheduled = True
            # call_soon runs after every callback already ready in this tick: all handlers
            # woken by the same poll have queued their commands by then.
            loop.call_soon(self._flush)
        return fut

    def queue(self, args: tuple[Any, ...], fut: "asyncio.Future[Any]", flush: bool = False) -> None:
        """Queues one command whose reply (or error) goes to ``fut`` (``flush``: see
        ``command``)."""
        if self._closed:
            self._fail([(args, fut)], RedisConnectionError("auto-pipeline is closed"), False)
            return
        self._pending.append((args, fut))
        if flush or len(self._pending) >= self.max_batch:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

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
        writer = redis_internals.stream_writer(conn)  # the stream: a sync write keeps order
        if writer is None:
            self._fail(pending, RedisConnectionError("connection to Redis lost"), False)
            return
        if _hiredis_pack is not None:
            chunks = [_hiredis_pack(args) for args, _ in pending]
        else:
            chunks = conn.pack_commands([args for args, _ in pending])
        # Futures join the in-flight queue in exactly the order their commands are written.
        self._inflight.extend(pending)
        writer.writelines(chunks)
        self.batches += 1
        self.commands += len(pending)

    async def _connect(self) -> None:
        try:
            conn = self._make_connection()
            await conn.connect()
        except Exception as exc:
            pending, self._pending = self._pending, []
            self._fail(pending, exc, False)
            return
        finally:
            self._connecting = None
        self._conn = conn
        if not self._take_over(conn):
            self._reader = asyncio.ensure_future(self._read(conn))
        self._flush()

    def _take_over(self, conn: AbstractConnection) -> bool:
        """Hot path: replies are parsed in the socket's own callback. The connection's
        transport gets a protocol that feeds every read to a hiredis reader and hands each
        reply over at once, instead of waking a reader task through a StreamReader (a task
        step, a future and a copy per read). False when the connection is not a plain
        asyncio stream (e.g. fakeredis): a reader task does the work then."""
        stream = redis_internals.stream_reader(conn)
        writer = redis_internals.stream_writer(conn)
        if _hiredis_reader is None or not isinstance(stream, asyncio.StreamReader):
            return False
        if writer is None or redis_internals.buffered(stream):
            return False  # (nothing is buffered after the handshake; if it were, keep it)
        transport = writer.transport
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        transport.set_protocol(_Replies(self, conn, _reply_parser(conn), closed))
        self._reader = asyncio.ensure_future(self._hold(conn, closed))
        return True

    async def _hold(self, conn: AbstractConnection, closed: "asyncio.Future[None]") -> None:
        """Stands for a taken-over connection as a task, like a reader task: it ends when the
        connection is lost, and when it is cancelled (close(), or the event loop shutting
        down) it closes the connection."""
        try:
            await closed
        except BaseException as exc:
            if self._conn is conn:
                self._lost(exc)
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            raise

    async def _read(self, conn: AbstractConnection) -> None:
        """The reader task of a connection that was not taken over (e.g. fakeredis): the
        connection parses, one reply per call."""
        try:
            while True:
                try:
                    reply = await conn.read_response()
                except ResponseError as exc:  # an error reply: the oldest command's
                    reply = exc
                self._dispatch(reply)
                if self.on_read is not None:
                    asyncio.get_running_loop().call_soon(self.on_read)
        except BaseException as exc:  # connection lost: nothing in flight will answer
            self._lost(exc)
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            if not isinstance(exc, Exception):
                raise

    def _connection_lost(self, conn: AbstractConnection, exc: BaseException) -> None:
        """The taken-over connection is gone: as when a reader task ends."""
        if self._conn is not conn:
            return  # closed on purpose (close()), which disconnects it itself
        self._lost(exc)
        task = asyncio.ensure_future(conn.disconnect(nowait=True))  # redis-py's own state
        task.add_done_callback(_consume)

    def _dispatch(self, reply: Any) -> None:
        """Hands one reply to the oldest command in flight."""
        if not self._inflight:  # cannot happen with a well-behaved server; do not crash
            return
        args, fut = self._inflight.popleft()
        if fut.done():  # the caller went away (cancelled): the reply is dropped
            return
        if isinstance(reply, Exception):
            if self._on_error is None or not self._on_error(args, fut, reply, True):
                fut.set_exception(reply)
        else:
            fut.set_result(reply)

    def _lost(self, exc: BaseException) -> None:
        self._conn = None
        failed = list(self._inflight)
        self._inflight.clear()
        err = exc if isinstance(exc, Exception) else RedisConnectionError("connection closed")
        self._fail(failed, err, True)
        if self._pending and not self._closed:
            asyncio.get_running_loop().call_soon(self._flush)

    def _fail(self, pending: list[Pending], exc: Exception, sent: bool) -> None:
        hook = self._on_error
        for args, fut in pending:
            if not fut.done() and (hook is None or not hook(args, fut, exc, sent)):
                fut.set_exception(exc)

    @property
    def peer(self) -> tuple[str, int] | None:
        """The (host, port) the connection is open to (None: not connected, or a socket)."""
        host = getattr(self._conn, "host", None)
        port = getattr(self._conn, "port", None)
        return None if host is None or port is None else (str(host), int(port))

    @property
    def idle(self) -> bool:
        """Nothing queued, in flight or connecting."""
        return not (self._pending or self._inflight or self._connecting)

    def abort(self) -> None:
        """Drops the connection at once (leaf7 issue 6): everything in flight fails as on a lost
        connection and the next call reconnects. The store calls it when the server stopped
        answering on this connection, which otherwise stays open (and stuck) for as long as
        the peer's socket does, e.g. a stopped server replaced behind the same address."""
        writer = redis_internals.stream_writer(self._conn)
        if writer is not None:
            writer.transport.abort()  # the reader sees EOF: _lost() runs

    async def drain(self) -> None:
        """Waits until every queued and in-flight command has its reply."""
        while self._pending or self._inflight or self._connecting:
            futs = [f for _, f in self._pending] + [f for _, f in self._inflight]
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

    async def call_all(self, *args: Any) -> list[Any]:
        """Runs a keyless command (SCRIPT LOAD, PING) on every primary: here, the one server."""
        return [await self.call(*args)]


def _reply_parser(conn: AbstractConnection) -> Any:
    """A hiredis reader that decodes and raises as the connection's own parser would."""
    encoder = conn.encoder
    kwargs: dict[str, Any] = {
        "protocolError": InvalidResponse,
        "replyError": redis_internals.error_parser(conn),
        "errors": encoder.encoding_errors,
    }
    if encoder.decode_responses:
        kwargs["encoding"] = encoder.encoding
    return _hiredis_reader(**kwargs)


class _Replies(asyncio.Protocol):
    """The protocol of a connection an :class:`AutoPipeline` took over: parses replies as
    bytes arrive. The stream's own protocol still hears about flow control and the end of
    the connection, so redis-py's writer (drain, close, wait_closed) keeps working."""

    def __init__(
        self,
        pipe: AutoPipeline,
        conn: AbstractConnection,
        parser: Any,
        closed: "asyncio.Future[None]",
    ) -> None:
        self._pipe = pipe
        self._conn = conn
        self._parser = parser
        self._closed = closed
        writer = redis_internals.stream_writer(conn)
        assert writer is not None
        self._stream: asyncio.BaseProtocol = writer.transport.get_protocol()
        self._transport = writer.transport
        self._loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        dispatch = self._pipe._dispatch
        parser.feed(data)
        try:
            while (reply := parser.gets()) is not False:
                dispatch(reply)
        except InvalidResponse as exc:  # not RESP: nothing after this can be trusted
            log.warning("Redis sent a malformed reply: %s", exc)
            self._transport.abort()
        on_read = self._pipe.on_read
        if on_read is not None:
            # After the callbacks the replies' futures scheduled: they are queued already.
            self._loop.call_soon(on_read)

    def eof_received(self) -> bool:
        return False  # the transport closes itself: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)
        lost = exc or RedisConnectionError("Redis closed the connection")
        self._pipe._connection_lost(self._conn, lost)
        self._stream.connection_lost(exc)

    def pause_writing(self) -> None:
        self._stream.pause_writing()

    def resume_writing(self) -> None:
        self._stream.resume_writing()


# ---- Redis Cluster ------------------------------------------------------------------------

_SCRIPT_COMMANDS = frozenset({"EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL", "FCALL_RO"})
_KEYLESS = frozenset({"PING", "CLUSTER", "SCRIPT", "INFO", "ASKING", "ECHO", "TIME"})
# Safe to send again when a connection died after the command was written (it may have run).
_IDEMPOTENT = frozenset({"GET", "HGET", "HGETALL", "HMGET", "SMEMBERS", "EXISTS", "PTTL", "TTL"})
# A script that reads an undeclared key of a slot being migrated (list and delete scripts
# build key names from a prefix) fails with this; nothing it wrote is lost by running again.
_NON_LOCAL = "non local key"
SLOTS = 16384


def _consume(fut: "asyncio.Future[Any]") -> None:
    if not fut.cancelled():
        fut.exception()


class ClusterAutoPipeline:
    """Automatic pipelining on Redis Cluster: one :class:`AutoPipeline` (one multiplexed
    connection) per primary, each command routed by the slot of its key (for EVALSHA/EVAL the
    first KEYS entry, otherwise the first argument), so a tick's commands become one write per
    node. Redirections are followed transparently: MOVED updates the slot map (and refreshes it
    from CLUSTER SLOTS in the background) and resends at once, ASK resends to the importing
    node behind ASKING, TRYAGAIN and CLUSTERDOWN (a slot mid-migration, a failover) resend
    after a short backoff. A command that cannot have run (no connection) is resent after the
    map is refreshed; one that may have run is resent only when it is a read. After
    ``max_attempts`` the caller gets a redis ``ConnectionError`` (the service answers 503)."""

    max_attempts = 25  # about 2 s of backoff in all: a slot migration or a failover's window

    def __init__(self, client: "RedisCluster", max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self._client = client
        self._max_batch = max_batch
        self._nodes: dict[str, AutoPipeline] = {}  # "host:port" -> its pipeline
        self._slots: list[AutoPipeline | None] | None = None  # slot -> primary's pipeline
        self._default: AutoPipeline | None = None  # keyless commands
        self._template: tuple[Callable[..., AbstractConnection], dict[str, Any]] | None = None
        self._awaiting_map: list[Pending] = []
        self._refreshing: asyncio.Task[None] | None = None
        self._attempts: dict[asyncio.Future[Any], int] = {}
        self._retrying = 0
        self._tasks: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._retired = (0, 0)  # batches, commands of pipelines closed after a topology change
        self.redirects = 0  # commands resent (MOVED, ASK, TRYAGAIN, lost connection)
        self.refreshes = 0  # slot maps loaded
        self._on_read: Callable[[], None] | None = None

    @property
    def on_read(self) -> Callable[[], None] | None:
        """AutoPipeline.on_read, for every node's pipeline."""
        return self._on_read

    @on_read.setter
    def on_read(self, hook: Callable[[], None] | None) -> None:
        self._on_read = hook
        for pipe in self._nodes.values():
            pipe.on_read = hook

    @property
    def batches(self) -> int:
        return self._retired[0] + sum(p.batches for p in self._nodes.values())

    @property
    def commands(self) -> int:
        return self._retired[1] + sum(p.commands for p in self._nodes.values())

    # -- routing --------------------------------------------------------------------------

    def call(self, *args: Any) -> "asyncio.Future[Any]":
        return self.command(args)

    def command(self, args: tuple[Any, ...], flush: bool = False) -> "asyncio.Future[Any]":
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._send(args, fut, flush)
        return fut

    def _send(self, args: tuple[Any, ...], fut: "asyncio.Future[Any]", flush: bool = False) -> None:
        if fut.done():
            return
        slots = self._slots
        if slots is None:
            if self._closed:
                fut.set_exception(RedisConnectionError("auto-pipeline is closed"))
                return
            self._awaiting_map.append((args, fut))
            self._refresh_soon()
            return
        slot = _slot_of(args)
        pipe = self._default if slot < 0 else slots[slot]
        if pipe is None:
            self._refresh_soon()
            if not self._retry(args, fut, RedisConnectionError(f"slot {slot} is not served")):
                fut.set_exception(RedisConnectionError(f"Redis Cluster: slot {slot} not served"))
            return
        pipe.queue(args, fut, flush)

    def _on_error(
        self, args: tuple[Any, ...], fut: "asyncio.Future[Any]", exc: Exception, sent: bool
    ) -> bool:
        """The node pipelines' error hook: True when the command was taken over (resent)."""
        if self._closed:
            return False
        name = str(args[0]).upper()
        if name in _KEYLESS:
            return False
        if isinstance(exc, ResponseError):
            if isinstance(exc, MovedError):
                self._moved(exc)
                return self._retry(args, fut, exc, backoff=False)
            if isinstance(exc, AskError):
                return self._retry(args, fut, exc, backoff=False, ask=exc)
            if isinstance(exc, ClusterDownError):
                self._refresh_soon()
                return self._retry(args, fut, exc)
            if isinstance(exc, TryAgainError) or _NON_LOCAL in str(exc):
                return self._retry(args, fut, exc)
            return False
        if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
            self._refresh_soon()
            if sent and name not in _IDEMPOTENT:
                return False  # it may have run: never twice
            return self._retry(args, fut, exc)
        return False

    def _retry(
        self,
        args: tuple[Any, ...],
        fut: "asyncio.Future[Any]",
        exc: Exception,
        *,
        backoff: bool = True,
        ask: AskError | None = None,
    ) -> bool:
        n = self._attempts.get(fut, 0) + 1
        if n > self.max_attempts:
            self._attempts.pop(fut, None)
            fut.set_exception(
                RedisConnectionError(f"Redis Cluster: gave up after {n - 1} attempts: {exc}")
            )
            return True
        if n == 1:
            fut.add_done_callback(self._forget)
        self._attempts[fut] = n
        self.redirects += 1
        if ask is not None:
            # ASKING applies to the next command on the connection: both go in one write.
            pipe = self._node(ask.host, ask.port)
            asking: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            asking.add_done_callback(_consume)
            pipe.queue(("ASKING",), asking)
            pipe.queue(args, fut)
        elif not backoff:
            self._send(args, fut)
        else:
            self._retrying += 1
            delay = min(0.002 * 2 ** (n - 1), 0.1)
            asyncio.get_running_loop().call_later(delay, self._resend, args, fut)
        return True

    def _resend(self, args: tuple[Any, ...], fut: "asyncio.Future[Any]") -> None:
        self._retrying -= 1
        self._send(args, fut)

    def _forget(self, fut: "asyncio.Future[Any]") -> None:
        self._attempts.pop(fut, None)

    def _moved(self, exc: MovedError) -> None:
        if self._slots is not None:
            self._slots[exc.slot_id] = self._node(exc.host, exc.port)
        self._refresh_soon()

    # -- nodes and the slot map -----------------------------------------------------------

    def _node(self, host: str, port: int | str) -> AutoPipeline:
        name = f"{host}:{port}"
        pipe = self._nodes.get(name)
        if pipe is None:
            pipe = self._nodes[name] = AutoPipeline(
                connect=functools.partial(self._connection, host, int(port)),
                on_error=self._on_error,
                max_batch=self._max_batch,
            )
            pipe.on_read = self._on_read
        return pipe

    def _connection(self, host: str, port: int) -> AbstractConnection:
        assert self._template is not None
        cls, kwargs = self._template
        # No retries below: this router decides what is resent, and where.
        return cls(**{**kwargs, "host": host, "port": port, "retry": Retry(NoBackoff(), 0)})

    def _refresh_soon(self) -> None:
        if self._refreshing is None and not self._closed:
            self._refreshing = asyncio.ensure_future(self._refresh())

    async def _refresh(self) -> None:
        try:
            try:
                self._install(await self._load_slots())
            except Exception as exc:
                log.warning("Redis Cluster: cannot load the slot map: %s", exc)
                waiting, self._awaiting_map = self._awaiting_map, []
                err = RedisConnectionError(f"Redis Cluster: cannot load the slot map: {exc}")
                for _, fut in waiting:
                    if not fut.done():
                        fut.set_exception(err)
                return
        finally:
            self._refreshing = None
        waiting, self._awaiting_map = self._awaiting_map, []
        for args, fut in waiting:
            self._send(args, fut)

    async def _load_slots(self) -> list[tuple[int, int, str, int]]:
        """(first slot, last slot, host, port) of every range, from the first node that
        answers CLUSTER SLOTS: known nodes first, then the client's startup nodes."""
        if self._template is None:
            await self._client.initialize()
            node = self._client.get_default_node()
            self._template = (node.connection_class, dict(node.connection_kwargs))
            for n in self._client.get_nodes():
                self._node(n.host, n.port)
        last: Exception = RedisConnectionError("no Redis Cluster node is known")
        for name, pipe in list(self._nodes.items()):
            try:
                reply = await asyncio.wait_for(pipe.call("CLUSTER", "SLOTS"), 5)
            except Exception as exc:
                last = exc
                continue
            host_asked = name.rsplit(":", 1)[0]
            ranges = []
            for entry in reply:
                start, end, primary = int(entry[0]), int(entry[1]), entry[2]
                host = primary[0] if primary[0] not in ("", "?", None) else host_asked
                ranges.append((start, end, str(host), int(primary[1])))
            if ranges:
                return ranges
        raise last

    def _install(self, ranges: list[tuple[int, int, str, int]]) -> None:
        slots: list[AutoPipeline | None] = [None] * SLOTS
        primaries: dict[str, AutoPipeline] = {}
        for start, end, host, port in sorted(ranges):
            pipe = self._node(host, port)
            primaries[f"{host}:{port}"] = pipe
            slots[start : end + 1] = [pipe] * (end - start + 1)
        self._slots = slots
        self._default = next(iter(primaries.values()), None)
        self.refreshes += 1
        for name in [n for n in self._nodes if n not in primaries]:
            old = self._nodes.pop(name)  # no longer a primary: close once its replies are in
            b, c = self._retired
            self._retired = (b + old.batches, c + old.commands)
            self._background(old.close())

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_consume)

    async def _primaries(self) -> list[AutoPipeline]:
        if self._slots is None:
            self._refresh_soon()
            if self._refreshing is not None:
                await asyncio.shield(self._refreshing)
            if self._slots is None:
                raise RedisConnectionError("Redis Cluster: cannot load the slot map")
        return list({id(p): p for p in self._slots if p is not None}.values())

    async def call_all(self, *args: Any) -> list[Any]:
        """Runs a keyless command (SCRIPT LOAD, PING) on every primary."""
        return list(await asyncio.gather(*(p.call(*args) for p in await self._primaries())))

    # -- shutdown -------------------------------------------------------------------------

    async def drain(self) -> None:
        """Waits until every queued, in-flight and to-be-resent command has its reply."""
        while True:
            busy = [p for p in self._nodes.values() if not p.idle]
            if busy:
                await asyncio.gather(*(p.drain() for p in busy))
            elif self._retrying or self._awaiting_map:
                await asyncio.sleep(0.001)
            else:
                return

    def abort(self) -> None:
        """Drops every node's connection (see AutoPipeline.abort)."""
        for pipe in self._nodes.values():
            pipe.abort()

    async def close(self) -> None:
        await self.drain()
        self._closed = True
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(BaseException):
                await self._refreshing
        await asyncio.gather(*(p.close() for p in self._nodes.values()), *list(self._tasks))


def _slot_of(args: tuple[Any, ...]) -> int:
    """The slot a command goes to (-1: keyless, any primary)."""
    name = args[0]
    if type(name) is str:
        name = name.upper()
    if name in _SCRIPT_COMMANDS:
        if int(args[2]) == 0:
            return -1
        key = args[3]
    elif name in _KEYLESS or len(args) < 2:
        return -1
    elif name == "XGROUP":  # XGROUP <subcommand> <stream> ...
        key = args[2]
    elif name in ("XREADGROUP", "XREAD"):  # ... STREAMS <stream> [<stream> ...] <id> ...
        key = args[[str(a).upper() for a in args].index("STREAMS") + 1]
    else:
        key = args[1]
    if not isinstance(key, bytes):
        key = str(key).encode()
    return key_slot(key)


class Pipeline(Protocol):
    """What the store needs of an auto-pipeline (single server or cluster)."""

    @property
    def batches(self) -> int: ...
    @property
    def commands(self) -> int: ...

    on_read: Callable[[], None] | None

    def call(self, *args: Any) -> "asyncio.Future[Any]": ...
    def command(self, args: tuple[Any, ...], flush: bool = False) -> "asyncio.Future[Any]": ...
    async def call_all(self, *args: Any) -> list[Any]: ...
    async def drain(self) -> None: ...
    async def close(self) -> None: ...
    def abort(self) -> None: ...


def auto_pipeline(
    client: "Redis | RedisCluster",
    max_batch: int = DEFAULT_MAX_BATCH,
    on_error: ErrorHook | None = None,
) -> AutoPipeline | ClusterAutoPipeline:
    """The auto-pipeline for a client: per node on a cluster, one connection otherwise
    (``on_error``: its error hook, one server only; the cluster router has its own)."""
    if isinstance(client, RedisCluster):
        return ClusterAutoPipeline(client, max_batch)
    return AutoPipeline(client, on_error=on_error, max_batch=max_batch)
