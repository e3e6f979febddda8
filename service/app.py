"""The application factory."""

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from service.appkeys import SETTINGS, STORE
from service.config import Settings
from service.embedded import EmbeddedValkey
from service.middleware import error_middleware
from service.observability import METRICS, Metrics, observe_middleware
from service.routes import setup_routes
from service.secret import load_secret
from service.webhooks import DelivererConfig, running
from store import Store, StoreUnavailable
from store.client import connect
from store.models import Limits

log = logging.getLogger("leaf7")


def create_app(
    settings: Settings | None = None,
    *,
    redis: "Redis | RedisCluster | None" = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Builds the app. With ``redis`` given (tests) that client is used and left open;
    otherwise ``REDIS_URL`` is connected, or the embedded Valkey is started."""
    settings = settings or Settings.from_env()
    # aiohttp's own cap is the largest body any route takes (hosted sources); read_json applies
    # each route's limit.
    max_size = max(settings.max_body, settings.max_source)
    app = web.Application(client_max_size=max_size)
    metrics = Metrics(lambda: app.get(STORE))
    app.middlewares.append(observe_middleware(metrics, log_requests=settings.access_log))
    app.middlewares.append(error_middleware)
    app[SETTINGS] = settings
    app[METRICS] = metrics

    async def storage(app: web.Application) -> AsyncIterator[None]:
        embedded: EmbeddedValkey | None = None
        client = redis
        if client is None:
            url = settings.redis_url
            if url is None:
                embedded = await asyncio.to_thread(EmbeddedValkey(settings.data_dir).start)
                url = embedded.url
            client = connect(
                url,
                max_connections=settings.redis_max_connections,
                timeout=settings.redis_timeout,
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
            ),
            timeout=settings.redis_timeout,
            fsync=settings.fsync,
            pipeline_batch=settings.pipeline_batch,
            check_batch=settings.check_batch,
        )
        try:
            await store.load_scripts()
        except (StoreUnavailable, RedisError) as exc:
            # Serve anyway (503 until Redis answers; /readyz tells): scripts are sent on
            # first use when the server's cache lacks them.
            log.warning("Redis is not reachable at start-up (%s); serving 503 until it is", exc)
        app[STORE] = store
        try:
            yield
        finally:
            await store.pipe.close()
            store.deadlines.close()
            if store.pipe.batches:
                log.info(
                    "auto-pipeline: %d commands in %d writes (%.1f per write)",
                    store.pipe.commands,
                    store.pipe.batches,
                    store.pipe.commands / store.pipe.batches,
                )
            if redis is None:
                await client.aclose()
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    async def webhooks(app: web.Application) -> AsyncIterator[None]:
        async with running(app[STORE], DelivererConfig.from_env()):
            yield

    app.cleanup_ctx.append(storage)
    if settings.webhooks:
        app.cleanup_ctx.append(webhooks)
    setup_routes(app)
    return app


async def tune_gc(app: web.Application) -> None:
    """Everything allocated at start-up lives as long as the process: keep it out of the
    collector's scans, and collect young objects less often (fewer pauses, lower p99)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


async def gunicorn_app() -> web.Application:
    """The app for gunicorn's aiohttp worker (an alternative to ``leaf7 serve --workers N``)::

        REDIS_URL=redis://... gunicorn 'service.app:gunicorn_app' --bind 0.0.0.0:8000 \\
            --workers 4 --worker-class aiohttp.GunicornUVLoopWebWorker

    Needs ``REDIS_URL``: gunicorn restarts workers on its own, and the embedded Valkey would
    stop with whichever worker happened to start it."""
    settings = Settings.from_env()
    if settings.redis_url is None:
        raise RuntimeError("leaf7 under gunicorn needs REDIS_URL (no embedded Valkey)")
    app = create_app(settings)
    app.on_startup.append(tune_gc)
    return app
