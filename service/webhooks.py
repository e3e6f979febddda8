"""The webhook deliverer: a background task in every instance (any of them may deliver).

It reads the notification streams of projects with a webhook through the ``webhooks``
consumer group, POSTs each event as a Discord-style embed, and deletes an entry only after a
2xx. A failed attempt leaves the entry pending; it is retried with exponential backoff (by
this or any other instance), at least once, until it is delivered or ``max_attempts`` is
reached. Nothing is on the loader's hot path.

One vendor's endpoint cannot hold up the others': projects are delivered concurrently, each
by its own task (its events in order, one POST at a time), at most ``concurrency`` POSTs in
all and ``per_endpoint`` per ``host:port``; every POST is bounded (``connect_timeout``,
``timeout``); an endpoint that keeps failing is paused with exponential backoff by a circuit
breaker, its events kept in the stream and not claimed meanwhile. The breaker is per
instance: another instance that has not seen the failures tries the endpoint itself and
opens its own breaker after as many failures (bounded, and no event is lost either way).

Targets are checked (handlers/targets.py): public unicast addresses only unless
``LEAF7_WEBHOOK_ALLOW`` allows more; a name is resolved once, every address it resolves to is
checked, and the connection goes to those checked addresses only (no second lookup a DNS
rebinding could answer differently). Redirects are not followed (a 3xx is a failed attempt).
"""

import asyncio
import contextlib
import enum
import ipaddress
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from handlers.targets import Network, address_allowed, endpoint, url_refusal
from service import discordtext
from service.config import Settings
from store import Store
from store.webhooks import Notification

log = logging.getLogger(f"leaf7.{__name__}")

COLORS = {"Success": 0x2ECC71, "Warning": 0xF1C40F, "Critical": 0xE74C3C}
TITLES = {
    "REDEEM": "Key redeemed",
    "HWID_RESET": "HWID reset",
    "HWID_SET": "HWID changed",
    "BAN": "Key banned",
    "UNBAN": "Key unbanned",
    "EXECUTION": "Execution refused",
    "KEY_SOLD": "Keys sold",
    "LEAK": "Leak traced to a key",
    "FORGED": "Forged answer refused",
    "TEST": "Test notification",
}
FIELD_NAMES = {
    "key_id": "Key",
    "discord_id": "Discord user",
    "old_hwid": "Previous HWID",
    "hwid": "HWID",
    "bound_hwid": "Bound HWID",
    "ip": "IP",
    "entry": "Blacklist entry",
    "order_id": "Order",
    "provider": "Store",
    "email": "Buyer",
    "reason": "Reason",
    "executor": "Executor",
}


def embed(n: Notification) -> dict[str, Any]:
    """The Discord webhook body of an event. Its values (a client's HWID, a store's order id
    and buyer email, ...) are data: escaped, so none can end a code span, form a link or
    mention anyone (service/discordtext.py), and ``allowed_mentions`` parses nothing."""
    f = n.fields
    fields = [
        {"name": FIELD_NAMES[name], "value": discordtext.code(f[name]), "inline": True}
        for name in FIELD_NAMES
        if f.get(name)
    ]
    ts = int(f.get("ts") or time.time())
    return {
        "username": "leaf7",
        "allowed_mentions": discordtext.NO_MENTIONS,
        "embeds": [
            {
                "title": TITLES.get(f.get("kind", ""), "leaf7 event"),
                "description": discordtext.escape(f.get("message", "")),
                "color": COLORS.get(f.get("type", ""), 0x95A5A6),
                "fields": [{"name": "Project", "value": discordtext.code(n.project_id)}, *fields],
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
            }
        ],
    }


@dataclass
class DelivererConfig:
    poll: float = 1.0  # seconds between rounds
    batch: int = 50  # events one project's task sends before it gives others a turn
    backoff: float = 10.0  # first retry after this many seconds, doubling per attempt
    max_backoff: float = 900.0
    max_attempts: int = 10
    timeout: float = 5.0  # one POST in all; keep it below ``backoff``
    connect_timeout: float = 2.0  # resolving and connecting, within ``timeout``
    concurrency: int = 32  # POSTs in flight at most, all projects together
    per_endpoint: int = 2  # POSTs in flight at most to one host:port
    max_tasks: int = 128  # project tasks at most (each sends at most one POST at a time)
    breaker_failures: int = 5  # consecutive failures that pause an endpoint
    breaker_pause: float = 10.0  # first pause, doubling while the endpoint keeps failing
    breaker_max_pause: float = 900.0
    allow: tuple[Network, ...] = field(default=())  # LEAF7_WEBHOOK_ALLOW

    @classmethod
    def from_settings(cls, settings: Settings) -> "DelivererConfig":
        return cls(
            poll=settings.webhook_poll,
            backoff=settings.webhook_backoff,
            max_attempts=settings.webhook_max_attempts,
            allow=settings.webhook_allow,
        )


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    ANSWERED = "answered"  # the endpoint answered, not with a 2xx (3xx included)
    UNREACHABLE = "unreachable"  # refused target, DNS, connection, timeout


@dataclass
class _Trip:
    failures: int = 0
    pauses: int = 0
    until: float = 0.0


class Breaker:
    """Consecutive failures per key; ``failures`` of them pause the key for ``pause`` seconds,
    doubling (up to ``max_pause``) while each first attempt after a pause fails again. A
    success closes it. Per instance, in memory."""

    LIMIT = 10_000  # keys kept at most; expired ones are dropped past it

    def __init__(
        self,
        failures: int,
        pause: float,
        max_pause: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.pause = pause
        self.max_pause = max_pause
        self.clock = clock
        self._trips: dict[str, _Trip] = {}

    def paused(self, key: str) -> float:
        """Seconds ``key`` stays paused (0: not paused)."""
        trip = self._trips.get(key)
        return max(0.0, trip.until - self.clock()) if trip else 0.0

    def success(self, key: str) -> None:
        self._trips.pop(key, None)

    def failure(self, key: str) -> float:
        """Counts a failure; the pause it starts, in seconds (0: none)."""
        now = self.clock()
        if len(self._trips) >= self.LIMIT:
            self._trips = {k: t for k, t in self._trips.items() if t.until > now}
        trip = self._trips.setdefault(key, _Trip())
        trip.failures += 1
        if trip.failures < self.failures:
            return 0.0
        pause = min(self.max_pause, self.pause * (1 << min(trip.pauses, 30)))
        trip.pauses += 1
        trip.until = now + pause
        return pause


class CheckedResolver(AbstractResolver):
    """Resolves with ``inner`` and returns the addresses only when every one of them is
    allowed; otherwise the whole lookup fails (the connection is refused). aiohttp connects
    to what this returns, so what was checked is what is connected to."""

    def __init__(self, allow: tuple[Network, ...], inner: AbstractResolver | None = None):
        self.allow = allow
        self.inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        for info in found:
            try:
                addr = ipaddress.ip_address(info["host"])
            except ValueError:
                raise OSError(f"{host} resolved to {info['host']!r}") from None
            if not address_allowed(addr, self.allow):
                raise OSError(f"{host} resolves to {addr}, which is not a public address")
        if not found:
            raise OSError(f"{host} did not resolve")
        return found

    async def close(self) -> None:
        await self.inner.close()


class Deliverer:
    def __init__(
        self,
        store: Store,
        config: DelivererConfig | None = None,
        resolver: AbstractResolver | None = None,  # DNS (tests); checked all the same
    ) -> None:
        self.store = store
        self.config = c = config or DelivererConfig()
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.delivered = 0
        self.failed_attempts = 0
        self.breaker = Breaker(c.breaker_failures, c.breaker_pause, c.breaker_max_pause)
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._posts = asyncio.Semaphore(c.concurrency)
        self._room = asyncio.Semaphore(c.max_tasks)
        self._in_flight: dict[str, int] = {}  # host:port -> POSTs in flight
        self._running: dict[str, asyncio.Task[int]] = {}  # project id -> its task

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            c = self.config
            connector = aiohttp.TCPConnector(
                resolver=CheckedResolver(c.allow, self._resolver), limit=c.concurrency
            )
            timeout = aiohttp.ClientTimeout(total=c.timeout, connect=c.connect_timeout)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    async def _post(self, url: str, n: Notification) -> Outcome:
        refusal = url_refusal(url, self.config.allow)
        if refusal is not None:
            log.warning("webhook %s refused: %s", n.project_id, refusal)
            return Outcome.UNREACHABLE
        try:
            async with self._client().post(url, json=embed(n), allow_redirects=False) as resp:
                if 200 <= resp.status < 300:
                    return Outcome.DELIVERED
                log.warning("webhook %s answered %d", n.project_id, resp.status)
                return Outcome.ANSWERED
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            log.warning("webhook %s failed: %r", n.project_id, exc)
            return Outcome.UNREACHABLE

    def _record(self, url: str, host: str, outcome: Outcome) -> None:
        if outcome is Outcome.DELIVERED:
            self.breaker.success(host)
            self.breaker.success(url)
            return
        self.failed_attempts += 1
        # A host that does not answer is paused for every project that uses it; an answer
        # that is not a 2xx pauses that URL only (one vendor's deleted Discord webhook must
        # not pause discord.com for the others).
        if outcome is Outcome.ANSWERED:
            self.breaker.success(host)
        pause = self.breaker.failure(host if outcome is Outcome.UNREACHABLE else url)
        if pause:
            log.warning("webhook endpoint %s paused for %.0f s", host, pause)

    async def _project(self, project_id: str) -> int:
        """Sends up to ``batch`` of a project's due events, one at a time, in order; returns
        how many were delivered."""
        c = self.config
        hooks = self.store.webhooks
        url = await hooks.target(project_id)
        if url is None:  # webhook removed meanwhile: nothing to deliver to
            for n in await hooks.claim(
                project_id, self.consumer, c.batch, c.backoff, c.max_backoff
            ):
                await hooks.done(n)
            return 0
        host = endpoint(url)
        delivered = 0
        for _ in range(c.batch):
            if self.breaker.paused(host) or self.breaker.paused(url):
                break  # its events stay in the stream, unclaimed
            if self._in_flight.get(host, 0) >= c.per_endpoint:
                break  # the endpoint is busy: next round
            self._in_flight[host] = self._in_flight.get(host, 0) + 1
            try:
                # Claimed only now, just before the POST: a claim counts as an attempt.
                batch = await hooks.claim(project_id, self.consumer, 1, c.backoff, c.max_backoff)
                if not batch:
                    break
                [n] = batch
                async with self._posts:
                    outcome = await self._post(url, n)
            finally:
                left = self._in_flight.pop(host) - 1
                if left:
                    self._in_flight[host] = left
            self._record(url, host, outcome)
            if outcome is Outcome.DELIVERED:
                await hooks.done(n)
                delivered += 1
            elif n.deliveries >= c.max_attempts:
                log.error("webhook %s: giving up on %s", project_id, n.entry_id)
                await hooks.done(n)
        return delivered

    async def _guarded(self, project_id: str) -> int:
        try:
            delivered = await self._project(project_id)
        except Exception:  # Redis down, etc.: this project is tried again next round
            log.exception("webhook delivery of %s failed", project_id)
            return 0
        finally:
            self._running.pop(project_id, None)
            self._room.release()
        self.delivered += delivered
        return delivered

    async def _start_round(self) -> list["asyncio.Task[int]"]:
        """Starts a task for every project with a webhook that has none running; at most
        ``max_tasks`` at a time (the round waits for room)."""
        started = []
        async for ids in self.store.webhooks.project_batches():
            for project_id in ids:
                if project_id in self._running:
                    continue
                await self._room.acquire()
                task = asyncio.create_task(self._guarded(project_id))
                self._running[project_id] = task
                started.append(task)
        return started

    async def run_once(self) -> int:
        """One round over every project with a webhook, waited for; returns how many events
        were delivered."""
        return sum(await asyncio.gather(*await self._start_round()))

    async def run(self) -> None:
        """Starts a round every ``poll`` seconds; a project's task runs on its own, so a slow
        endpoint delays nobody's next round."""
        while True:
            try:
                await self._start_round()
            except Exception:  # Redis down, etc.: keep the loop alive, try again later
                log.exception("webhook round failed")
            await asyncio.sleep(self.config.poll)

    async def close(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
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
