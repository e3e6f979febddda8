"""The server runtime behind ``leaf7 serve``: one serving process (the app, its access-log
lines on stdout, the drain on SIGTERM) or the pre-fork parent of ``--workers`` processes."""

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

from aiohttp import web

from handlers import aiohttp_internals
from service import firstrun
from service.config import Settings
from service.conncap import CappedSite
from service.embedded import EmbeddedValkey
from service.storage import open_store

log = logging.getLogger(f"leaf7.{__name__}")


def serve(settings: Settings, host: str, port: int, workers: int, *, reuse_port: bool) -> int:
    """Serves until SIGTERM or SIGINT: ``workers`` processes (a pre-fork parent) or this one;
    ``reuse_port`` when this process is a worker of such a parent."""
    if settings.public_url is None and not reuse_port:  # (a worker: its parent warned)
        warn_no_public_url(host, port)
    if workers > 1:
        return _serve_workers(workers, host, port, settings)
    _run_worker(host, port, settings, reuse_port=reuse_port)
    return 0


class _AccessLines:
    """Access-log lines (already JSON) into a 64 KiB buffer on stdout's descriptor, flushed
    twice a second and at shutdown: no logging records, no write(2) per request."""

    def __init__(self) -> None:
        self.stream = open(  # noqa: SIM115 - lives as long as the process
            sys.stdout.fileno(), "w", buffering=65536, encoding="utf-8", closefd=False
        )

    def write(self, line: str) -> None:
        self.stream.write(line + "\n")

    def flush(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self.stream.flush()


def warn_no_public_url(host: str, port: int) -> None:
    """Once at start: without LEAF7_PUBLIC_URL the URLs leaf7 hands out name the address it
    listens on (handlers/clientip.py base_url), which clients elsewhere may not reach."""
    shown = f"[{host}]" if ":" in host else host
    log.warning(
        "LEAF7_PUBLIC_URL is not set: loader.lua, store hook URLs and the dashboard name the "
        "address leaf7 listens on (http://%s:%d; the address each connection reached when "
        "listening on all interfaces). Set LEAF7_PUBLIC_URL to the URL clients use.",
        shown,
        port,
    )


def _run_worker(host: str, port: int, settings: Settings, *, reuse_port: bool) -> None:
    """One serving process (the only one, or a worker of ``--workers``)."""
    from handlers.appkeys import METRICS
    from service.app import create_app, tune_gc

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep serving without it
        pass
    app = create_app(settings)
    app.on_startup.append(tune_gc)
    if not reuse_port:  # (a worker of --workers: its parent announced)
        app.on_startup.append(firstrun.on_startup(settings, host, port))
    lines = _AccessLines()
    app[METRICS].access_sink = lines.write  # one JSON object per line on stdout

    async def flush_access_log(app: web.Application) -> AsyncIterator[None]:
        async def every_half_second() -> None:
            while True:
                await asyncio.sleep(0.5)
                lines.flush()

        task = asyncio.ensure_future(every_half_second())
        yield
        task.cancel()
        lines.flush()

    app.cleanup_ctx.append(flush_access_log)
    if reuse_port:
        app.cleanup_ctx.append(_exit_with_parent)
    asyncio.run(_run_app(app, host, port, settings, reuse_port=reuse_port))
    lines.flush()


async def _run_app(
    app: web.Application,
    host: str,
    port: int,
    settings: Settings,
    *,
    reuse_port: bool,
    drain_timeout: float = 60.0,
) -> None:
    """Serves until SIGTERM or SIGINT, then stops accepting connections and lets every request
    in flight finish (up to ``drain_timeout``) before the app is cleaned up.

    (``web.run_app`` is not used: its shutdown stops reading from every connection at once, so
    a request whose body is still arriving never completes.)"""
    runner = web.AppRunner(
        app, access_log=None, keepalive_timeout=75.0, shutdown_timeout=settings.shutdown_timeout
    )
    await runner.setup()
    try:
        site = CappedSite(
            runner,
            host,
            port,
            settings.max_conn_per_ip,
            trusted=settings.trusted_proxies,
            reuse_port=reuse_port,
        )
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await site.stop()  # no new connections; the kernel hands them to the other workers
        await _drain(runner, drain_timeout)
    finally:
        await runner.cleanup()


async def _drain(runner: web.AppRunner, limit: float) -> None:
    """Waits until no connection has a request in progress, closing each idle keep-alive
    connection (so no new request starts on it)."""
    server = runner.server
    if server is None:
        return
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        busy = 0
        for conn in server.connections:
            if aiohttp_internals.request_in_progress(conn):
                busy += 1
            else:
                conn.close()
        if not busy or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.02)


async def _exit_with_parent(app: web.Application) -> AsyncIterator[None]:
    """A worker whose parent died (SIGKILL, OOM) shuts down cleanly instead of serving on."""
    parent = os.getppid()

    async def watch() -> None:
        while True:
            await asyncio.sleep(1)
            if os.getppid() != parent:
                break
        log.warning("leaf7 worker %d: the parent process is gone, shutting down", os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    task = asyncio.ensure_future(watch())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _serve_workers(workers: int, host: str, port: int, settings: Settings) -> int:
    """Pre-fork parent: starts the embedded Valkey once (when there is no REDIS_URL; the
    workers attach to it), then ``workers`` processes that each bind the port with
    SO_REUSEPORT (the kernel spreads connections over them). SIGTERM or SIGINT is forwarded
    once as SIGTERM: every worker stops accepting, finishes its in-flight requests and exits;
    then the parent stops the Valkey it started. A second signal kills the workers. When a
    worker dies on its own, the others are stopped too and the exit status is 1 (leave
    restarts to the supervisor: systemd, Docker, Kubernetes)."""
    embedded = None
    if settings.redis_url is None:
        embedded = EmbeddedValkey(settings.data_dir, settings.aof_rewrite_min_mb).start()
    signals: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        signals.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    cmd = [sys.executable, "-m", "service", "serve", "--host", host, "--port", str(port)]
    cmd += ["--workers", "1", "--reuse-port"]
    procs: list[subprocess.Popen[bytes]] = []
    status = 0
    try:
        for _ in range(workers):
            # A process group of their own: a terminal's Ctrl-C reaches only the parent, which
            # forwards exactly one SIGTERM (a second signal would cut the drain short).
            procs.append(subprocess.Popen(cmd, process_group=0))  # noqa: S603
        log.info("leaf7: %d workers on http://%s:%d", workers, host, port)
        firstrun.announce(settings, host, port, asyncio.run(_vendor_exists(settings)))
        while not signals:
            if any(p.poll() is not None for p in procs):
                log.error("leaf7: a worker exited; stopping the others")
                status = 1
                break
            time.sleep(0.1)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        handled = len(signals)
        while any(p.poll() is None for p in procs):
            if len(signals) > handled:  # a second signal: no more waiting
                for p in procs:
                    if p.poll() is None:
                        p.kill()
            time.sleep(0.05)
        if any(p.returncode not in (0, -signal.SIGTERM) for p in procs):
            status = 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if embedded is not None:
            embedded.stop()
    return status


async def _vendor_exists(settings: Settings) -> bool | None:
    async with open_store(settings) as store:
        return await firstrun.vendor_exists(store)
