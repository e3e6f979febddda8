"""``open_store(settings)``: the store of the app and of the CLI, on ``REDIS_URL`` or on the
embedded Valkey of the data directory (shared with a running ``leaf7 serve``, or started for
this process and stopped with it)."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from service.config import Settings
from service.embedded import EmbeddedValkey
from service.secret import load_secret
from store import Store
from store.client import aclose, connect
from store.models import Limits

log = logging.getLogger(f"leaf7.{__name__}")

# Seconds between two looks at the embedded Valkey's AOF (rewrite_when_quiet).
QUIET_CHECK_EVERY = 10.0


async def rewrite_when_quiet(store: Store, grown_mb: int, quiet_ops: int) -> None:
    """The embedded Valkey only; runs until cancelled. An AOF rewrite stalls the server on
    fsyncs (docs/performance.md): once the AOF grew ``grown_mb`` MiB since its last rewrite,
    a rewrite is asked for at a moment the server does at most ``quiet_ops`` operations per
    second, so that the stall falls where few loader checks wait. The server's own threshold
    (LEAF7_AOF_REWRITE_MIN_MB) stays the backstop when it is never quiet. Every process on
    the server may run this: a second request while one runs is refused by the server."""
    while True:
        await asyncio.sleep(QUIET_CHECK_EVERY)
        try:
            aof = await store.persistence.aof()
            if aof.rewriting or aof.grown < grown_mb * 2**20 or aof.ops_per_sec > quiet_ops:
                continue
            if await store.persistence.rewrite_aof():
                log.info(
                    "AOF rewrite started: %d MiB appended since the last one, %d ops/s",
                    aof.grown >> 20,
                    aof.ops_per_sec,
                )
        except Exception as exc:  # unavailable, or refused: the next round tries again
            log.debug("AOF housekeeping skipped: %s", exc)


def log_per_batch(logger: logging.Logger, message: str, count: int, batches: int) -> None:
    """Logs how well work was batched at shutdown: ``message`` with the count, the batches
    and the count per batch; nothing when there was no batch."""
    if batches:
        logger.info(message, count, batches, count / batches)


@contextlib.asynccontextmanager
async def open_store(
    settings: Settings,
    *,
    redis: "Redis | RedisCluster | None" = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Store]:
    """A store configured by ``settings``. With ``redis`` given (tests) that client is used
    and left open; otherwise ``REDIS_URL`` is connected, or the embedded Valkey is started.
    On exit the auto-pipeline is drained and whatever was opened here is closed."""
    embedded: EmbeddedValkey | None = None
    client = redis
    if client is None:
        url = settings.redis_url
        if url is None:
            embedded = await asyncio.to_thread(
                EmbeddedValkey(settings.data_dir, settings.aof_rewrite_min_mb).start
            )
            url = embedded.url
        client = connect(
            url, max_connections=settings.redis_max_connections, timeout=settings.redis_timeout
        )
    store = Store(
        client,
        retention=settings.expired_retention,
        clock=clock,
        secret=await asyncio.to_thread(load_secret, settings),
        limits=Limits(
            execute=settings.rate_execute,
            execute_window=settings.rate_window,
            failures=settings.brute_force_limit,
            failure_window=settings.brute_force_window,
            failures_48=settings.brute_force_limit_wide,
        ),
        timeout=settings.redis_timeout,
        fsync=settings.fsync,
        pipeline_batch=settings.pipeline_batch,
        check_batch=settings.check_batch,
    )
    # Durable writes also wait for this many replicas (refused on Redis Cluster by Settings).
    store.core.durability.replicas = settings.min_replicas_ack
    # Redis Sentinel: follow the primary even when the old one stays up (store/core.py).
    tasks = [asyncio.ensure_future(store.core.follow_primary())]
    if embedded is not None and settings.aof_quiet_rewrite_mb:
        quiet = rewrite_when_quiet(store, settings.aof_quiet_rewrite_mb, settings.aof_quiet_ops)
        tasks.append(asyncio.ensure_future(quiet))
    try:
        yield store
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await store.close()
        pipe = store.core.pipe
        log_per_batch(
            log,
            "auto-pipeline: %d commands in %d writes (%.1f per write)",
            pipe.commands,
            pipe.batches,
        )
        if redis is None:
            await aclose(client)
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
