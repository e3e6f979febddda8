"""The store's core: the connection (auto-pipeline and pool), the scripts, durability and the
one bound on every Redis wait. Every domain module (vendors, projects, licences, ...) is given
a ``Core`` and talks to Redis only through its coroutines, so no wait can go unbounded.

The bound: a request must never hang on storage. A server that is stopped (SIGSTOP, a
partition) keeps its sockets open and simply does not answer, and the auto-pipeline's reader
waits on its socket without a timeout of its own. So every reply the core awaits is watched by
``Deadlines`` (store/bounded.py, one timer for all of them) or, for a pool connection's
pipeline, runs under ``asyncio.timeout``; past ``timeout`` seconds it raises
``StoreUnavailable`` (503). A timed-out write has an unknown outcome: the server may still
apply it when it resumes.

Failover (Redis Sentinel, ``redis+sentinel://``): the client's pool asks the sentinels for the
primary on every new connection, so whatever reconnects (the auto-pipeline after its
connection broke or the probe dropped it; a pool connection) reaches the promoted replica. An
old primary that is still alive but was demoted answers writes with ``READONLY``: the core
then drops the auto-pipeline's connection and the pool's idle ones (the next connection asks
again) and answers ``StoreUnavailable`` (503), never the error as a verdict.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import NoScriptError, ReadOnlyError, ResponseError

from store.autopipe import DEFAULT_MAX_BATCH, AutoPipeline, Pipeline, auto_pipeline
from store.bounded import Deadlines
from store.durable import Durability
from store.errors import StoreUnavailable, script_error
from store.scripts import Script, Scripts

# Members per SSCAN step of a bulk operation (and per script call that works on them).
SCAN_BATCH = 500


class Core:
    def __init__(
        self,
        redis: "Redis | RedisCluster",
        *,
        clock: Callable[[], float] = time.time,
        retention: int = 7 * 86400,
        timeout: float | None = 2.0,
        fsync: str = "waitaof",
        pipeline_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self.redis = redis
        self.clock = clock
        # Seconds an expired key is kept (and its ref) before Redis drops it.
        self.retention = retention
        self.pipe: Pipeline = auto_pipeline(redis, pipeline_batch, self._pipe_error)
        self.timeout = timeout
        self.timeouts = 0  # waits that exceeded the bound
        self.pipe_aborts = 0
        self.deadlines = Deadlines(self)
        self._probe: asyncio.Future[None] | None = None
        self.demotions = 0  # READONLY replies: the server we reached is a replica now
        self.switches = 0  # the sentinels named another primary than the pipeline's
        self._tasks: set[asyncio.Future[Any]] = set()
        # Vendor writes that create or destroy value end with WAITAOF (store/durable.py).
        # (Not on Redis Cluster: WAITAOF names no key, so it cannot follow the write's slot.)
        cluster = isinstance(redis, RedisCluster)
        self.durability = Durability("none" if cluster else fsync, timeout)
        self.scripts = Scripts()

    def now(self) -> int:
        return int(self.clock())

    # ---- the bound ------------------------------------------------------------------------

    def on_timeout(self) -> None:
        """A wait exceeded the bound: check the auto-pipeline's connection (once at a time)."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_pipe())

    async def _probe_pipe(self) -> None:
        """If the auto-pipeline's connection does not answer a PING within the bound either,
        drop it so that the next call reconnects: a server that stopped answering, or was
        replaced behind the same address, would otherwise hold every loader check on it."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.pipe.call("PING")
        except TimeoutError:
            self.pipe_aborts += 1
            self.pipe.abort()
        except Exception:  # noqa: S110 - lost or refused: the pipeline reconnects by itself
            pass

    def _pipe_error(
        self, args: tuple[Any, ...], fut: "asyncio.Future[Any]", exc: Exception, sent: bool
    ) -> bool:
        """The auto-pipeline's error hook: ``READONLY`` means the server was demoted."""
        if not isinstance(exc, ReadOnlyError):
            return False
        self._demoted()
        fut.set_exception(StoreUnavailable("storage is a replica now (failover)"))
        return True

    def _demoted(self) -> None:
        """The server answered ``READONLY``: a failover made it a replica. Drop the
        auto-pipeline's connection and the pool's idle ones, so that the next connection
        goes to the primary (through Sentinel, to the promoted replica)."""
        self.demotions += 1
        self.pipe.abort()
        pool = getattr(self.redis, "connection_pool", None)
        if pool is not None:
            task = asyncio.ensure_future(pool.disconnect(inuse_connections=False))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def follow_primary(self, every: float = 1.0) -> None:
        """Redis Sentinel only (returns at once otherwise), runs until cancelled: every
        ``every`` seconds, asks the sentinels where the primary is, and drops the connections
        to any other server. A failover whose old primary is still up and still answers
        (``SENTINEL FAILOVER``, a partition) breaks no connection by itself: without this, the
        auto-pipeline would keep serving loader checks from the old primary until the
        sentinels reconfigure it (about 10 s)."""
        pool = getattr(self.redis, "connection_pool", None)
        if not isinstance(pool, SentinelConnectionPool) or not isinstance(self.pipe, AutoPipeline):
            return
        while True:
            await asyncio.sleep(every)
            try:
                async with asyncio.timeout(self.timeout or 5.0):
                    # (the pool also drops its idle connections when the address changed)
                    host, port = await pool.get_master_address()  # type: ignore[no-untyped-call]
            except Exception:  # noqa: S112 - no answer, or no primary (mid-failover): next round
                continue
            peer = self.pipe.peer
            if peer is not None and peer != (str(host), int(port)):
                self.switches += 1
                self.pipe.abort()

    async def _within_bound(self, aw: "Any") -> Any:
        """Awaits ``aw`` (a coroutine) within the bound, or raises ``StoreUnavailable``."""
        bound = asyncio.timeout(self.timeout)
        try:
            async with bound:
                return await aw
        except TimeoutError:
            if not bound.expired():
                raise
            self.timeouts += 1
            self.on_timeout()
            raise StoreUnavailable("storage timed out") from None

    # ---- bounded primitives: the only ways a domain module reaches Redis ------------------

    def call(self, *args: Any) -> "asyncio.Future[Any]":
        """One command in the auto-pipeline (one shared round trip); its reply, or
        ``StoreUnavailable`` once the bound has passed."""
        fut = self.pipe.call(*args)
        self.deadlines.watch(fut)
        return fut

    async def call_all(self, *args: Any) -> list[Any]:
        """A keyless command on every primary."""
        result: list[Any] = await self._within_bound(self.pipe.call_all(*args))
        return result

    async def script(
        self, script: Script, keys: Sequence[str], args: Sequence[Any], *, durable: bool = False
    ) -> Any:
        """Runs a script in the automatic pipeline: one command, one shared round trip.
        ``durable``: on a pool connection followed by WAITAOF instead (store/durable.py).
        A script's ``L7:...`` error reply raises its store error."""
        if durable and self.durability.enabled:
            return await self._durable_script(script, keys, args)
        try:
            try:
                return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
            except NoScriptError:  # script cache flushed or server restarted: send the body
                return await self.call("EVAL", script.source, len(keys), *keys, *args)
        except ResponseError as exc:
            raise script_error(exc) from None

    async def _durable_script(
        self, script: Script, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        for command in ("EVALSHA", "EVAL"):  # EVAL only after NOSCRIPT
            body = script.sha if command == "EVALSHA" else script.source
            result = (await self.write([(command, body, len(keys), *keys, *args)]))[0]
            if not isinstance(result, NoScriptError):
                break
        if isinstance(result, ResponseError):
            raise script_error(result) from None
        return result

    async def write(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Sends ``commands`` in one pipeline on one pool connection, followed by WAIT (the
        replicas) and WAITAOF when durability is on; returns their replies (an error reply as
        its exception)."""
        result: list[Any] = await self._within_bound(self._write(commands))
        return result

    async def _write(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        waits = self.durability.commands()
        for args in waits:
            pipe.execute_command(*args)
        results = await pipe.execute(raise_on_error=False)
        if any(isinstance(r, ReadOnlyError) for r in results):
            self._demoted()  # (a Sentinel pool's connection already reconnected and retried)
            raise StoreUnavailable("storage is a replica now (failover)")
        if waits:
            self.durability.check_all(waits, results[len(commands) :])
            del results[len(commands) :]
        return results

    async def members(self, index: str) -> AsyncIterator[list[str]]:
        """The members of a set in batches of about ``SCAN_BATCH`` (SSCAN: bounded work and
        memory per step, however large the set)."""
        cursor = "0"
        while True:
            cursor, ids = await self.call("SSCAN", index, cursor, "COUNT", SCAN_BATCH)
            # A step may return more than COUNT (a set kept compact comes back whole): the
            # batches handed on stay at most SCAN_BATCH.
            for at in range(0, len(ids), SCAN_BATCH):
                yield [str(i) for i in ids[at : at + SCAN_BATCH]]
            if str(cursor) == "0":
                return

    # ---- lifecycle ------------------------------------------------------------------------

    async def load_scripts(self) -> None:
        """Warms the script cache of every primary so the first requests do not pay for
        NOSCRIPT (a node that joins later, or restarts, costs one EVAL per script)."""
        await asyncio.gather(
            *(self.call_all("SCRIPT", "LOAD", s.source) for s in self.scripts.all())
        )

    async def ping(self) -> bool:
        """Every primary answers PING."""
        return all(await self.call_all("PING"))

    async def close(self) -> None:
        """Drains the auto-pipeline (on shutdown) and stops the bound's timer."""
        await self.pipe.close()
        self.deadlines.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def raise_first(results: Iterable[Any]) -> None:
    """Raises the first error reply of a pipeline's results."""
    for result in results:
        if isinstance(result, Exception):
            raise result


def flatten(items: Iterable[tuple[str, object]]) -> list[object]:
    """``{f1: v1, ...}.items()`` -> ``[f1, v1, ...]`` (HSET's and scripts' argument form)."""
    return [x for kv in items for x in kv]
