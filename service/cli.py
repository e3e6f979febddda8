"""The ``leaf7`` command: ``serve``, the operator's ``vendor`` commands, ``backup`` and
``restore``."""

import argparse
import asyncio
import contextlib
import csv
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import orjson
from aiohttp import web

from handlers import ids, schemas, transfer
from service.config import ConfigError, Settings
from service.conncap import CappedSite
from service.embedded import EmbeddedValkey
from service.storage import open_store
from store import ProjectNotFound, Store, VendorNotFound
from store.models import iso
from store.transfer import MAX_IMPORT, ImportEntry

log = logging.getLogger("leaf7")


def _discord_id(value: str) -> str:
    if not ids.DISCORD_ID.valid(value):
        raise argparse.ArgumentTypeError("a Discord ID is a string of digits")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leaf7", description="leaf7 licence-key server")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="bind address (default LEAF7_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default LEAF7_PORT or 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        help="processes serving the port with SO_REUSEPORT (default LEAF7_WORKERS or 1)",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)

    sub.add_parser(
        "bot",
        help="run the Discord bot (needs leaf7[bot]; configured by DISCORD_TOKEN, "
        "LEAF7_API_URL, LEAF7_API_KEY, LEAF7_PROJECT_ID)",
    )

    vendor = sub.add_parser("vendor", help="manage vendors (operator only)")
    vsub = vendor.add_subparsers(dest="vendor_command", required=True)
    create = vsub.add_parser("create", help="create a vendor and print its API key once")
    create.add_argument("--name", required=True)
    create.add_argument("--discord-id", type=_discord_id)
    link = vsub.add_parser("link-discord", help="link a Discord account to a vendor")
    link.add_argument("vendor_id")
    link.add_argument("discord_id", type=_discord_id)
    rotate = vsub.add_parser(
        "rotate-key",
        help="give a vendor a new API key (printed once), e.g. for a lost or leaked key; "
        "every earlier key stops at once, grace periods included, unless --grace is given",
    )
    rotate.add_argument("vendor_id")
    rotate.add_argument(
        "--grace",
        type=int,
        default=None,
        help="seconds the current key keeps working (earlier keys in their grace period "
        "keep theirs); without it, every earlier key stops at once",
    )

    imp = vsub.add_parser(
        "import-csv",
        help="import keys from another system into a vendor's project: a CSV with a header "
        "row and the columns " + ", ".join(CSV_COLUMNS) + " (key_id required; empty cells "
        "are absent), in batches of 1000; prints a JSON summary (bad rows by line number)",
    )
    imp.add_argument("vendor_id")
    imp.add_argument("project_id")
    imp.add_argument("file", type=Path, help="the CSV file (UTF-8)")

    backup = sub.add_parser(
        "backup",
        help="write a backup of all data to FILE while the service runs (point-in-time for "
        "the embedded Valkey, per key for REDIS_URL; the secret is not included)",
    )
    backup.add_argument("file", type=Path, help="the backup file (replaced atomically)")
    restore = sub.add_parser(
        "restore", help="load a backup FILE into an empty data directory or an empty Redis"
    )
    restore.add_argument("file", type=Path, help="a file written by leaf7 backup")
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore into a target that already holds keys (keys of the backup replace keys "
        "of the same name; other keys stay)",
    )
    return parser


async def _vendor(args: argparse.Namespace, settings: Settings) -> int:
    if args.vendor_command == "import-csv":
        return await _import_csv(args, settings)
    async with open_store(settings) as store:
        if args.vendor_command == "create":
            name = args.name.strip()
            if not 1 <= len(name) <= 100:
                print("leaf7: --name must be 1 to 100 characters", file=sys.stderr)
                return 2
            vendor_id, api_key = await store.vendors.create(name, args.discord_id)
            out = {"vendor_id": vendor_id, "api_key": api_key, "discord_id": args.discord_id}
        elif args.vendor_command == "rotate-key":
            if args.grace is not None and args.grace < 0:
                print("leaf7: --grace must be >= 0", file=sys.stderr)
                return 2
            vendors = store.vendors
            try:
                api_key, expires = await vendors.rotate_api_key(args.vendor_id, args.grace or 0)
                if args.grace is None:  # a leaked key: nothing earlier keeps working
                    await vendors.revoke_previous(args.vendor_id)
            except VendorNotFound:
                print(f"leaf7: no vendor {args.vendor_id}", file=sys.stderr)
                return 1
            out = {
                "vendor_id": args.vendor_id,
                "api_key": api_key,
                "previous_key_expires_at": iso(expires),
            }
        else:
            try:
                vendor = await store.vendors.link_discord(args.vendor_id, args.discord_id)
            except VendorNotFound:
                print(f"leaf7: no vendor {args.vendor_id}", file=sys.stderr)
                return 1
            out = {"vendor_id": vendor.vendor_id, "discord_id": vendor.discord_id}
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    sys.stdout.flush()
    return 0


CSV_COLUMNS = (
    "key_id",
    "discord_id",
    "hwid",
    "expires_at",
    "key_days",
    "key_hours",
    "key_minutes",
    "note",
    "banned",
    "redeemed",
)
_CSV_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_CSV_ERRORS_SHOWN = 1000  # lines listed in the summary at most (the counts are complete)


def _csv_key(row: dict[str, str | None]) -> "schemas.ImportKey":
    """One CSV row as an import entry (empty cells are absent); ValueError when it is not."""
    fields: dict[str, object] = {}
    for name, value in row.items():
        if value is None or value == "":
            continue
        if name in ("banned", "redeemed"):
            flag = _CSV_BOOLS.get(value.strip().lower())
            if flag is None:
                raise ValueError(f"{name}: must be true or false")
            fields[name] = flag
        else:
            fields[name] = value
    try:
        return msgspec.convert(fields, schemas.ImportKey, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc).replace("`$.", "`")) from None


async def _import_csv(args: argparse.Namespace, settings: Settings) -> int:
    """``vendor import-csv VENDOR_ID PROJECT_ID FILE``: the rows in batches of 1000 keys (each
    one import, store/transfer.py). Exit status 0 when every row was imported or was in the
    project already, 1 when a row was bad or refused (or the project is not the vendor's),
    2 when the file cannot be read as such a CSV."""
    try:
        handle = args.file.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        print(f"leaf7: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
        except (csv.Error, UnicodeDecodeError) as exc:
            print(f"leaf7: {args.file}: {exc}", file=sys.stderr)
            return 2
        unknown = [c for c in header if c not in CSV_COLUMNS]
        if "key_id" not in header or unknown or len(set(header)) != len(header):
            print(
                f"leaf7: {args.file}: the header row must name key_id and only the columns "
                f"{', '.join(CSV_COLUMNS)}, each once (unknown: {', '.join(unknown) or '-'})",
                file=sys.stderr,
            )
            return 2
        async with open_store(settings) as store:
            try:
                await store.projects.get(args.vendor_id, args.project_id)
            except ProjectNotFound:
                print(
                    f"leaf7: no project {args.project_id} of vendor {args.vendor_id}",
                    file=sys.stderr,
                )
                return 1
            try:
                out = await _import_rows(store, args.vendor_id, args.project_id, reader)
            except (csv.Error, UnicodeDecodeError) as exc:
                print(f"leaf7: {args.file}: line {reader.line_num}: {exc}", file=sys.stderr)
                return 2
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    sys.stdout.flush()
    return 0 if not out["bad_rows"] and not out["refused"] else 1


async def _import_rows(
    store: "Store", vendor_id: str, project_id: str, reader: "csv.DictReader[str]"
) -> dict[str, Any]:
    counts = {"rows": 0, "imported": 0, "unchanged": 0, "refused": 0, "bad_rows": 0}
    problems: list[dict[str, object]] = []

    def problem(line: int, detail: str, key_id: str | None = None) -> None:
        if len(problems) < _CSV_ERRORS_SHOWN:
            problems.append(
                {"line": line, **({"key_id": key_id} if key_id else {}), "detail": detail}
            )

    batch: list[tuple[int, ImportEntry]] = []
    lines: dict[str, int] = {}

    async def flush() -> None:
        if not batch:
            return
        summary = await store.transfer.import_keys(vendor_id, project_id, [e for _, e in batch])
        for (line, _), result in zip(batch, summary.results, strict=True):
            counts[result.status] += 1
            if result.status == "refused":
                problem(line, str(result.detail), result.key_id)
        batch.clear()
        lines.clear()

    end = reader.line_num
    for row in reader:
        line, end = end + 1, reader.line_num
        counts["rows"] += 1
        try:
            if None in row:
                raise ValueError("more cells than the header has columns")
            entry = transfer.to_entry(_csv_key(row))
            if entry.key_id in lines:
                raise ValueError(f"key_id: the same key as line {lines[entry.key_id]}")
        except ValueError as exc:  # InvalidEntry too
            counts["bad_rows"] += 1
            problem(line, str(exc), row.get("key_id") or None)
            continue
        lines[entry.key_id] = line
        batch.append((line, entry))
        if len(batch) == MAX_IMPORT:
            await flush()
    await flush()
    return {"vendor_id": vendor_id, "project_id": project_id, **counts, "errors": problems}


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    """``backup FILE`` / ``restore FILE [--force]`` (service/backup.py): one JSON line on
    stdout; exit status 1 when it fails, 2 when restore refuses a target that holds keys."""
    from service import backup

    try:
        if args.command == "backup":
            made = backup.backup(settings, args.file)
            out: dict[str, object] = {
                "file": str(made.path),
                "keys": made.keys,
                "bytes": made.size,
                "consistency": made.consistency,
                "seconds": round(made.seconds, 3),
            }
        else:
            done = backup.restore(settings, args.file, force=args.force)
            out = {
                "keys": done.keys,
                "expired_skipped": done.expired,
                "backup_created_at": done.created_at,
                "consistency": done.consistency,
                "seconds": round(done.seconds, 3),
            }
    except backup.TargetNotEmpty as exc:
        print(f"leaf7: restore refused: {exc}", file=sys.stderr)
        return 2
    except backup.BackupError as exc:
        print(f"leaf7: {args.command} failed: {exc}", file=sys.stderr)
        return 1
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    workers = args.workers if args.workers is not None else settings.workers
    if workers < 1:
        print("leaf7: --workers must be >= 1", file=sys.stderr)
        return 2
    if workers > 1:
        return _serve_workers(workers, host, port, settings)
    _run_worker(host, port, settings, reuse_port=args.reuse_port)
    return 0


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
            if conn._request_in_progress:
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


def _bot() -> int:
    try:
        from service import bot
    except ImportError:
        print("leaf7: the bot needs discord.py: pip install 'leaf7[bot]'", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        bot.run()
    except bot.BotConfigError as exc:
        print(f"leaf7: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "bot":
        return _bot()
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"leaf7: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(args, settings)
    if args.command in ("backup", "restore"):
        return _backup(args, settings)
    return asyncio.run(_vendor(args, settings))
