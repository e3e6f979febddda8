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
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from store.autopipe import DEFAULT_MAX_BATCH, Pipeline, auto_pipeline
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
        self.pipe: Pipeline = auto_pipeline(redis, pipeline_batch)
        self.timeout = timeout
        self.timeouts = 0  # waits that exceeded the bound
        self.pipe_aborts = 0
        self.deadlines = Deadlines(self)
        self._probe: asyncio.Future[None] | None = None
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
        """Sends ``commands`` in one pipeline on one pool connection, followed by WAITAOF when
        durability is on; returns their replies (an error reply as its exception)."""
        result: list[Any] = await self._within_bound(self._write(commands))
        return result

    async def _write(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        durable = self.durability.enabled
        if durable:
            pipe.execute_command(*self.durability.command())
        results = await pipe.execute(raise_on_error=False)
        if durable:
            self.durability.check(results.pop())
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


def raise_first(results: Iterable[Any]) -> None:
    """Raises the first error reply of a pipeline's results."""
    for result in results:
        if isinstance(result, Exception):
            raise result


def flatten(items: Iterable[tuple[str, object]]) -> list[object]:
    """``{f1: v1, ...}.items()`` -> ``[f1, v1, ...]`` (HSET's and scripts' argument form)."""
    return [x for kv in items for x in kv]
