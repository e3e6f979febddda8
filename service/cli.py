"""The ``leaf7`` command: ``serve``, the operator's ``vendor`` commands, ``backup`` and
``restore``."""

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from handlers import ids
from service import csvimport, runtime
from service.config import ConfigError, Settings
from service.storage import open_store
from store import VendorNotFound
from store.models import iso


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
        "row and the columns "
        + ", ".join(csvimport.CSV_COLUMNS)
        + " (key_id required; empty cells "
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
        return await csvimport.import_csv(settings, args.vendor_id, args.project_id, args.file)
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


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    """``backup FILE`` / ``restore FILE [--force]`` (service/backup/): one JSON line on
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
                "not_restored": done.not_restored,
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


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    workers = args.workers if args.workers is not None else settings.workers
    if workers < 1:
        print("leaf7: --workers must be >= 1", file=sys.stderr)
        return 2
    return runtime.serve(settings, host, port, workers, reuse_port=args.reuse_port)


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
