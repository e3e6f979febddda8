"""What ``leaf7 serve`` says once at start: where it listens, the dashboard and the API
explorer, where its data lives and, while no vendor exists, the exact command that creates
one (a fresh clone's ``make run`` then tells the next step)."""

import logging
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from handlers.appkeys import STORE
from service.config import Settings
from store import Store

log = logging.getLogger(f"leaf7.{__name__}")


def _local_url(host: str, port: int) -> str:
    """The URL of the listening address (all interfaces: this machine's loopback)."""
    if host in ("0.0.0.0", ""):  # noqa: S104 - only shown
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _where_data(settings: Settings) -> str:
    if settings.redis_url is not None:
        parts = urlsplit(settings.redis_url)
        # Never the password; a cluster or Sentinel URL names several hosts.
        where = parts.netloc.rpartition("@")[2] or parts.path
        return f"Redis at {parts.scheme}://{where} (REDIS_URL)"
    return f"{settings.data_dir.resolve()} (the embedded Valkey, its AOF and the server secret)"


def create_vendor_command(env: dict[str, str] | None = None) -> str:
    """The command that creates a vendor, as this shell would type it: this install's
    ``leaf7`` (relative to the working directory when under it) and the variables that chose
    where the data lives."""
    env = dict(os.environ) if env is None else env
    exe = Path(sys.executable).parent / "leaf7"
    shown = "leaf7"
    if exe.exists():
        try:
            shown = str(exe.relative_to(Path.cwd()))
        except ValueError:
            shown = str(exe)
    prefix = ""
    if env.get("REDIS_URL"):
        prefix += "REDIS_URL=... "  # as given to leaf7 serve (not shown: it may hold a password)
    if env.get("LEAF7_DATA_DIR"):
        prefix += f"LEAF7_DATA_DIR={shlex.quote(env['LEAF7_DATA_DIR'])} "
    if env.get("LEAF7_SECRET"):
        prefix += "LEAF7_SECRET=... "
    return f'{prefix}{shown} vendor create --name "My Store" --discord-id YOUR_DISCORD_ID'


def lines(settings: Settings, host: str, port: int, has_vendor: bool | None) -> list[str]:
    local = _local_url(host, port)
    public = settings.public_url or local
    out = [
        f"leaf7 listens on {local}",
        f"dashboard: {public}/dashboard/   API explorer: {public}/docs",
        f"data: {_where_data(settings)}",
    ]
    if has_vendor is False:
        out += [
            "no vendor yet: create one (it prints the API key that signs in to the dashboard):",
            "    " + create_vendor_command(),
        ]
    return out


async def vendor_exists(store: Store) -> bool | None:
    """None when Redis cannot tell now (the hint is then left out)."""
    try:
        return await store.vendors.exist()
    except Exception as exc:  # unavailable at start: serving goes on, 503 until it answers
        log.debug("vendor look-up at start skipped: %s", exc)
        return None


def announce(settings: Settings, host: str, port: int, has_vendor: bool | None) -> None:
    for line in lines(settings, host, port, has_vendor):
        log.info("%s", line)


def on_startup(
    settings: Settings, host: str, port: int
) -> Callable[[web.Application], Awaitable[None]]:
    """The app's start-up hook that announces (after its store is open)."""

    async def greet(app: web.Application) -> None:
        announce(settings, host, port, await vendor_exists(app[STORE]))

    return greet
