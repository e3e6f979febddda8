"""The ``leaf7`` command: ``serve`` and the operator's ``vendor`` commands."""

import argparse
import asyncio
import contextlib
import gc
import logging
import re
import sys
from collections.abc import AsyncIterator, Sequence

import orjson
from aiohttp import web
from redis.asyncio import Redis

from service.config import ConfigError, Settings
from service.embedded import EmbeddedValkey
from store import Store, VendorNotFound
from store.client_options import client_options

DISCORD_ID = re.compile(r"[0-9]{1,20}")


def _discord_id(value: str) -> str:
    if not DISCORD_ID.fullmatch(value):
        raise argparse.ArgumentTypeError("a Discord ID is a string of digits")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leaf7", description="leaf7 licence-key server")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="bind address (default LEAF7_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default LEAF7_PORT or 8000)")

    vendor = sub.add_parser("vendor", help="manage vendors (operator only)")
    vsub = vendor.add_subparsers(dest="vendor_command", required=True)
    create = vsub.add_parser("create", help="create a vendor and print its API key once")
    create.add_argument("--name", required=True)
    create.add_argument("--discord-id", type=_discord_id)
    link = vsub.add_parser("link-discord", help="link a Discord account to a vendor")
    link.add_argument("vendor_id")
    link.add_argument("discord_id", type=_discord_id)
    return parser


@contextlib.asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[Store]:
    """A store on REDIS_URL, or on the embedded server of the data directory (shared with a
    running ``leaf7 serve``, or started just for this command)."""
    embedded = None
    url = settings.redis_url
    if url is None:
        embedded = await asyncio.to_thread(EmbeddedValkey(settings.data_dir).start)
        url = embedded.url
    client = Redis.from_url(url, decode_responses=True, **client_options(settings.redis_timeout))
    try:
        yield Store(
            client,
            retention=settings.expired_retention,
            timeout=settings.redis_timeout,
            fsync=settings.fsync,
        )
    finally:
        await client.aclose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def _vendor(args: argparse.Namespace, settings: Settings) -> int:
    async with _store(settings) as store:
        if args.vendor_command == "create":
            name = args.name.strip()
            if not 1 <= len(name) <= 100:
                print("leaf7: --name must be 1 to 100 characters", file=sys.stderr)
                return 2
            vendor_id, api_key = await store.create_vendor(name, args.discord_id)
            out = {"vendor_id": vendor_id, "api_key": api_key, "discord_id": args.discord_id}
        else:
            try:
                vendor = await store.link_discord(args.vendor_id, args.discord_id)
            except VendorNotFound:
                print(f"leaf7: no vendor {args.vendor_id}", file=sys.stderr)
                return 1
            out = {"vendor_id": vendor.vendor_id, "discord_id": vendor.discord_id}
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    sys.stdout.flush()
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


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from service.app import create_app
    from service.observability import METRICS

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep serving without it
        pass
    app = create_app(settings)

    async def freeze_gc(app: web.Application) -> None:
        # Everything allocated at start-up lives as long as the process: keep it out of the
        # collector's scans, and collect young objects less often (fewer pauses, lower p99).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)

    app.on_startup.append(freeze_gc)
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
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    # SIGTERM/SIGINT: aiohttp stops accepting, lets in-flight requests finish for up to
    # shutdown_timeout seconds, then closes connections and runs cleanup (the auto-pipeline
    # drains, the embedded Valkey stops cleanly). aiohttp's own access log is off: ours is
    # the JSON one.
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        print=None,
        shutdown_timeout=settings.shutdown_timeout,
    )
    lines.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"leaf7: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(args, settings)
    return asyncio.run(_vendor(args, settings))
