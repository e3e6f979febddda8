"""The application factory."""

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from handlers import dashboard, obfuscation
from handlers.appkeys import METRICS, SETTINGS, SIGNER, STORE
from handlers.freekeys import links as freekeys_links
from handlers.middleware import error_middleware
from handlers.observability import Metrics, observe_middleware
from handlers.signing import Signer
from handlers.verdicts import SignedVerdicts
from service.config import Settings
from service.routes import setup_routes
from service.secret import signing_secret
from service.storage import log_per_batch, open_store
from service.webhooks import DelivererConfig, running
from store import StoreUnavailable

log = logging.getLogger(f"leaf7.{__name__}")


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
    metrics = Metrics(lambda: app.get(STORE), lambda: app.get(SIGNER))
    app.middlewares.append(observe_middleware(metrics, log_requests=settings.access_log))
    app.middlewares.append(error_middleware)
    app[SETTINGS] = settings
    app[METRICS] = metrics

    async def storage(app: web.Application) -> AsyncIterator[None]:
        async with open_store(settings, redis=redis, clock=clock) as store:
            try:
                await store.core.load_scripts()
            except (StoreUnavailable, RedisError) as exc:
                # Serve anyway (503 until Redis answers; /readyz tells): scripts are sent on
                # first use when the server's cache lacks them.
                log.warning("Redis is not reachable at start-up (%s); serving 503 until it is", exc)
            app[STORE] = store
            signer = app[SIGNER] = Signer(signing_secret(settings, store.vendors.secret))
            # Valid verdicts that ask for a signature are signed as their batch is decoded.
            store.checks.on_valid = SignedVerdicts(signer, store.now, store.vendors.secret)
            yield
            log_per_batch(
                log,
                "signed verdicts: %d answers under %d signatures (%.1f per signature)",
                signer.leaves,
                signer.signatures,
            )

    async def webhooks(app: web.Application) -> AsyncIterator[None]:
        async with running(app[STORE], DelivererConfig.from_settings(settings)):
            yield

    app.cleanup_ctx.append(storage)
    obfuscation.setup(app)  # after storage: its jobs end before the store closes
    if settings.webhooks:
        app.cleanup_ctx.append(webhooks)
    dashboard.setup(app)
    freekeys_links.setup(app)
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
    if settings.public_url is None:
        log.warning(
            "LEAF7_PUBLIC_URL is not set: loader.lua, store hook URLs and the dashboard name "
            "the address each connection reached. Set LEAF7_PUBLIC_URL to the URL clients use."
        )
    app = create_app(settings)
    app.on_startup.append(tune_gc)
    return app
