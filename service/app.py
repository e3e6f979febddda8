"""The application factory."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.appkeys import SETTINGS, STORE
from service.config import Settings
from service.embedded import EmbeddedValkey
from service.middleware import error_middleware
from service.observability import METRICS, Metrics, observe_middleware
from service.routes import setup_routes
from store import Store, StoreUnavailable
from store.client_options import client_options

log = logging.getLogger("leaf7")


def create_app(
    settings: Settings | None = None,
    *,
    redis: "Redis | None" = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Builds the app. With ``redis`` given (tests) that client is used and left open;
    otherwise ``REDIS_URL`` is connected, or the embedded Valkey is started."""
    settings = settings or Settings.from_env()
    # aiohttp's own cap is the largest body any route takes (hosted sources); read_json applies
    # each route's limit.
    max_size = max(settings.max_body, settings.max_source)
    metrics = Metrics(lambda: app.get(STORE))
    observe = observe_middleware(metrics, log_requests=settings.access_log)
    app = web.Application(client_max_size=max_size, middlewares=[observe, error_middleware])
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
            client = Redis.from_url(
                url,
                decode_responses=True,
                max_connections=settings.redis_max_connections,
                **client_options(settings.redis_timeout),
            )
        store = Store(
            client,
            retention=settings.expired_retention,
            clock=clock,
            timeout=settings.redis_timeout,
            fsync=settings.fsync,
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

    app.cleanup_ctx.append(storage)
    setup_routes(app)
    return app
