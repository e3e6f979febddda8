"""The webhook deliverer: a background task in every instance (any of them may deliver).

It reads the notification streams of projects with a webhook through the ``webhooks``
consumer group, POSTs each event as a Discord-style embed, and deletes an entry only after a
2xx. A failed attempt leaves the entry pending; it is retried with exponential backoff (by
this or any other instance), at least once, until it is delivered or ``max_attempts`` is
reached. Nothing is on the loader's hot path.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from store import Store
from store.webhooks import Notification

log = logging.getLogger("leaf7.webhooks")

COLORS = {"Success": 0x2ECC71, "Warning": 0xF1C40F, "Critical": 0xE74C3C}
TITLES = {
    "REDEEM": "Key redeemed",
    "HWID_RESET": "HWID reset",
    "HWID_SET": "HWID changed",
    "BAN": "Key banned",
    "UNBAN": "Key unbanned",
    "EXECUTION": "Execution refused",
}
FIELD_NAMES = {
    "key_id": "Key",
    "discord_id": "Discord user",
    "old_hwid": "Previous HWID",
    "hwid": "HWID",
    "bound_hwid": "Bound HWID",
    "ip": "IP",
    "entry": "Blacklist entry",
}


def embed(n: Notification) -> dict[str, Any]:
    f = n.fields
    fields = [
        {"name": FIELD_NAMES[name], "value": f"`{f[name]}`", "inline": True}
        for name in FIELD_NAMES
        if f.get(name)
    ]
    ts = int(f.get("ts") or time.time())
    return {
        "username": "leaf7",
        "embeds": [
            {
                "title": TITLES.get(f.get("kind", ""), "leaf7 event"),
                "description": f.get("message", ""),
                "color": COLORS.get(f.get("type", ""), 0x95A5A6),
                "fields": [{"name": "Project", "value": f"`{n.project_id}`"}, *fields],
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
            }
        ],
    }


@dataclass
class DelivererConfig:
    poll: float = 1.0  # seconds between rounds when idle
    batch: int = 50
    backoff: float = 10.0  # first retry after this many seconds, doubling per attempt
    max_backoff: float = 900.0
    max_attempts: int = 10
    timeout: float = 5.0  # one POST; keep it below ``backoff``

    @classmethod
    def from_env(cls) -> "DelivererConfig":
        return cls(
            poll=float(os.environ.get("LEAF7_WEBHOOK_POLL", "1")),
            backoff=float(os.environ.get("LEAF7_WEBHOOK_BACKOFF", "10")),
            max_attempts=int(os.environ.get("LEAF7_WEBHOOK_MAX_ATTEMPTS", "10")),
        )


class Deliverer:
    def __init__(self, store: Store, config: DelivererConfig | None = None) -> None:
        self.store = store
        self.config = config or DelivererConfig()
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.delivered = 0
        self.failed_attempts = 0
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, url: str, n: Notification) -> bool:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.config.timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            async with self._session.post(url, json=embed(n)) as resp:
                ok = 200 <= resp.status < 300
                if not ok:
                    log.warning("webhook %s answered %d", n.project_id, resp.status)
                return ok
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("webhook %s failed: %r", n.project_id, exc)
            return False

    async def run_once(self) -> int:
        """One round over every project with a webhook; returns how many were delivered."""
        c = self.config
        hooks = self.store.webhooks
        delivered = 0
        for project_id in await hooks.projects():
            batch = await hooks.claim(project_id, self.consumer, c.batch, c.backoff, c.max_backoff)
            if not batch:
                continue
            url = await hooks.target(project_id)
            for n in batch:
                if url is None:  # webhook removed meanwhile: nothing to deliver to
                    await hooks.done(n)
                elif await self._post(url, n):
                    await hooks.done(n)
                    delivered += 1
                else:
                    self.failed_attempts += 1
                    if n.deliveries >= c.max_attempts:
                        log.error("webhook %s: giving up on %s", project_id, n.entry_id)
                        await hooks.done(n)
        self.delivered += delivered
        return delivered

    async def run(self) -> None:
        while True:
            try:
                delivered = await self.run_once()
            except Exception:  # Redis down, etc.: keep the loop alive, try again later
                log.exception("webhook round failed")
                delivered = 0
            if not delivered:
                await asyncio.sleep(self.config.poll)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


@contextlib.asynccontextmanager
async def running(store: Store, config: DelivererConfig | None = None) -> Any:
    deliverer = Deliverer(store, config)
    task = asyncio.create_task(deliverer.run())
    try:
        yield deliverer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await deliverer.close()
