"""Webhooks reach public addresses only (SSRF), and one slow endpoint delays nobody else.

The address policy is refused at save time (422) and checked again at delivery, against every
address a name resolves to; redirects are never followed. The deliverer runs projects
concurrently, bounds each endpoint, and pauses one that keeps failing (its events kept)."""

import asyncio
import contextlib
import dataclasses
import ipaddress
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from redis.asyncio import Redis

from handlers.targets import address_allowed, endpoint, is_public, literal_address, url_refusal
from service.app import create_app
from service.config import ConfigError, Settings
from service.webhooks import Deliverer, DelivererConfig, running
from store import keyspace
from tests.support.api import Api, execute, store_of

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
FAST = DelivererConfig(poll=0.05, backoff=0.2, max_backoff=1.0, max_attempts=3, timeout=2)

REFUSED = [
    "http://127.0.0.1:8000/hook",
    "http://127.0.0.1./hook",
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/hook",  # fullwidth
    "http://hooks.localhost/hook",
    "http://intranet/hook",  # no dot: a local name
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://0.0.0.0/hook",
    "http://0/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # CGNAT
    "http://224.0.0.1/hook",
    "http://255.255.255.255/hook",
    "http://240.0.0.1/hook",
    "http://192.0.2.1/hook",  # documentation
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://[::127.0.0.1]/hook",  # IPv4-compatible
    "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://[fc00::1]/hook",
    "http://[fd12:3456::1]/hook",
    "http://[fec0::1]/hook",  # site-local
    "http://[fe80::1]/hook",
    "http://[ff0e::1]/hook",
    "http://0x7f.1/hook",
    "http://0X7F.0.0.1/hook",
    "http://2130706433/hook",
    "http://127.1/hook",
    "http://0177.0.0.1/hook",
    "http://017700000001/hook",
    "http://0x7f000001/hook",
    "http://10.1/hook",
    "http://1.2.3.256/hook",  # a name ending in a number is no name
    "http://user:pw@127.0.0.1/hook",
    "https://127.0.0.1:443/hook",
]
ALLOWED = [
    "https://discord.com/api/webhooks/1/abc",
    "http://8.8.8.8/hook",
    "http://[2606:4700:4700::1111]/hook",
    "https://hooks.example/x?y=1#z",
    "http://hooks.local/x",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_targets(url: str) -> None:
    assert url_refusal(url) is not None


@pytest.mark.parametrize("url", ALLOWED)
def test_public_targets(url: str) -> None:
    assert url_refusal(url) is None


def test_address_policy() -> None:
    assert literal_address("0x7f.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("0177.0.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("discord.com") is None
    assert is_public(ipaddress.ip_address("1.1.1.1"))
    assert not is_public(ipaddress.ip_address("::ffff:10.0.0.1"))
    # The allow list adds networks; an IPv4-mapped address counts as its IPv4 address.
    assert address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK)
    assert not address_allowed(ipaddress.ip_address("10.0.0.1"), LOOPBACK)
    assert url_refusal("http://127.0.0.1:8000/x", LOOPBACK) is None
    assert url_refusal("http://localhost:8000/x", LOOPBACK) is None
    assert url_refusal("http://10.0.0.1/x", LOOPBACK) is not None


def test_allow_list_setting() -> None:
    """LEAF7_WEBHOOK_ALLOW is parsed once, by Settings, and the deliverer takes it from there."""
    settings = Settings.from_env({"LEAF7_WEBHOOK_ALLOW": "10.0.5.0/24, 127.0.0.1,fd00::/8"})
    assert [str(n) for n in settings.webhook_allow] == ["10.0.5.0/24", "127.0.0.1/32", "fd00::/8"]
    assert DelivererConfig.from_settings(settings).allow == settings.webhook_allow
    assert Settings.from_env({}).webhook_allow == ()
    assert DelivererConfig.from_settings(Settings.from_env({})).allow == ()
    with pytest.raises(ConfigError, match="LEAF7_WEBHOOK_ALLOW"):
        Settings.from_env({"LEAF7_WEBHOOK_ALLOW": "localhost"})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0x7f.1/hook",
        "http://2130706433/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://intranet/hook",
    ],
)
async def test_private_webhook_is_refused_when_saved(api: Api, url: str) -> None:
    body = await api.call("POST", "/api/vendor/projects", {"name": "x", "webhook_url": url}, 422)
    assert body["detail"].startswith("webhook_url: "), body
    project = await api.project()
    path = f"/api/vendor/projects/{project['project_id']}"
    body = await api.call("PATCH", path, {"webhook_url": url}, status=422)
    assert body["detail"].startswith("webhook_url: "), body
    assert (await api.call("GET", path))["webhook_url"] is None
    assert await api.store.webhooks.projects() == []


async def test_allow_list_lets_operators_use_private_targets(
    aiohttp_client: Any, app_redis: Any, settings: Settings
) -> None:
    allowed = dataclasses.replace(settings, webhook_allow=LOOPBACK)
    client = await aiohttp_client(create_app(allowed, redis=app_redis))
    api = await Api(client, store_of(client)).login()
    await api.project(webhook_url="http://127.0.0.1:9/hook")
    await api.project(webhook_url="http://localhost:9/hook")
    body = {"name": "x", "webhook_url": "http://10.0.0.1/hook"}
    await api.call("POST", "/api/vendor/projects", body, status=422)


# ---- at delivery -------------------------------------------------------------------------


class Receiver:
    def __init__(self, status: int = 204, location: str | None = None) -> None:
        self.status = status
        self.location = location
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((time.monotonic(), await request.json()))
        self.arrived.set()
        headers = {"Location": self.location} if self.location else None
        return web.Response(status=self.status, headers=headers)


@pytest.fixture
async def receiver_port(aiohttp_server: Any) -> Any:
    async def start(receiver: Receiver) -> int:
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        server = await aiohttp_server(app, host="127.0.0.1")
        return int(server.port)

    return start


@pytest.fixture
async def vendor(aiohttp_client: Any, real_redis: Redis, settings: Settings) -> Api:
    """A vendor on the real Valkey whose app lets it save loopback webhooks (the deliverer
    under test decides, with its own allow list, whether they are reached)."""
    allowed = dataclasses.replace(settings, webhook_allow=LOOPBACK)
    client = await aiohttp_client(create_app(allowed, redis=real_redis))
    return await Api(client, store_of(client)).login()


async def _event(api: Api, project_id: str) -> None:
    [key] = await api.keys(project_id)
    await api.redeem(key["key_id"])


class FakeDns(AbstractResolver):
    """What a DNS server answers for a name (a rebinding attacker's, say)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups += 1
        return [
            {
                "hostname": host,
                "host": a,
                "port": port,
                "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for a in self.answers[host]
        ]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "0x7f.1", "127.1", "2130706433"],
)
async def test_loopback_is_not_reached_without_allow(
    vendor: Api, receiver_port: Any, host: str
) -> None:
    receiver = Receiver()
    port = await receiver_port(receiver)
    pid = (await vendor.project(webhook_url=f"http://{host}:{port}/hook"))["project_id"]
    await _event(vendor, pid)
    config = dataclasses.replace(FAST, backoff=0.05, max_backoff=0.1)  # no allow list
    deliverer = Deliverer(vendor.store, config)
    try:
        assert await deliverer.run_once() == 0
        assert deliverer.failed_attempts == 1
        assert await vendor.store.redis.xlen(keyspace.notify(pid)) == 1  # kept, to retry
        for _ in range(config.max_attempts - 1):  # the retry policy as ever: then dropped
            await asyncio.sleep(config.max_backoff + 0.02)
            await deliverer.run_once()
    finally:
        await deliverer.close()
    assert receiver.received == []
    assert deliverer.failed_attempts == config.max_attempts
    assert await vendor.store.redis.xlen(keyspace.notify(pid)) == 0


async def test_the_same_receiver_is_reached_with_allow(vendor: Api, receiver_port: Any) -> None:
    """The control of the test above: the receiver works, the policy is what refused."""
    receiver = Receiver()
    port = await receiver_port(receiver)
    pid = (await vendor.project(webhook_url=f"http://127.0.0.1:{port}/hook"))["project_id"]
    await _event(vendor, pid)
    deliverer = Deliverer(vendor.store, dataclasses.replace(FAST, allow=LOOPBACK))
    try:
        assert await deliverer.run_once() == 1
    finally:
        await deliverer.close()
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("answer", "allow", "reached"),
    [
        (["127.0.0.1"], (), False),
        (["93.184.215.14", "127.0.0.1"], (), False),  # one bad address refuses them all
        (["::ffff:127.0.0.1"], (), False),
        (["127.0.0.1"], LOOPBACK, True),
    ],
)
async def test_every_resolved_address_is_checked(
    vendor: Api, receiver_port: Any, answer: list[str], allow: Any, reached: bool
) -> None:
    receiver = Receiver()
    port = await receiver_port(receiver)
    pid = (await vendor.project(webhook_url=f"http://hooks.test:{port}/hook"))["project_id"]
    await _event(vendor, pid)
    dns = FakeDns({"hooks.test": answer})
    deliverer = Deliverer(vendor.store, dataclasses.replace(FAST, allow=allow), resolver=dns)
    try:
        assert await deliverer.run_once() == int(reached)
    finally:
        await deliverer.close()
    assert dns.lookups == 1  # one lookup: what was checked is what was connected to
    assert len(receiver.received) == int(reached)
    assert deliverer.failed_attempts == int(not reached)


async def test_redirects_are_not_followed(vendor: Api, receiver_port: Any) -> None:
    inner = Receiver()
    inner_port = await receiver_port(inner)
    outer = Receiver(status=307, location=f"http://127.0.0.1:{inner_port}/hook")
    outer_port = await receiver_port(outer)
    pid = (await vendor.project(webhook_url=f"http://127.0.0.1:{outer_port}/hook"))["project_id"]
    await _event(vendor, pid)
    deliverer = Deliverer(vendor.store, dataclasses.replace(FAST, allow=LOOPBACK))
    try:
        assert await deliverer.run_once() == 0  # a 3xx is a failed attempt
    finally:
        await deliverer.close()
    assert len(outer.received) == 1 and inner.received == []
    assert deliverer.failed_attempts == 1
    assert await vendor.store.redis.xlen(keyspace.notify(pid)) == 1  # kept, to retry


# ---- one slow endpoint -------------------------------------------------------------------


class Tarpit:
    """An endpoint that accepts connections, reads, and never answers."""

    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.closed = 0
        self.most_open = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.changed = asyncio.Event()  # a connection opened or closed

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self.changed.set()
        try:
            while await reader.read(65536):
                pass
        finally:
            self.open -= 1
            self.closed += 1
            self.changed.set()
            writer.close()

    async def wait(self, closed: int, limit: float) -> None:
        """Until ``closed`` connections were closed (timed out by the deliverer)."""
        async with asyncio.timeout(limit):
            while self.closed < closed:
                self.changed.clear()
                await self.changed.wait()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def tarpit() -> AsyncIterator[Tarpit]:
    pit = Tarpit()
    yield pit
    if pit.server is not None:
        pit.server.close()
        for writer in pit.writers:
            writer.close()


async def _refused_executions(api: Api, project_id: str, n: int) -> None:
    """``n`` notified events: loader checks of a key bound to another HWID."""
    [key] = await api.keys(project_id)
    await api.redeem(key["key_id"])
    await execute(api, project_id, key["key_id"], hwid="pc-1")
    for _ in range(n - 1):
        await execute(api, project_id, key["key_id"], hwid="pc-2")


async def _wait_for(receiver: Receiver, count: int, limit: float) -> None:
    """Until ``count`` requests arrived, for ``limit`` seconds at most."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit):
            while len(receiver.received) < count:
                receiver.arrived.clear()
                await receiver.arrived.wait()


async def test_a_hanging_endpoint_delays_no_other_project(
    vendor: Api, receiver_port: Any, tarpit: Tarpit
) -> None:
    """60 events queued for an endpoint that never answers; another project's events, queued
    before the deliverer starts and while it is stuck on the first, arrive within 10 s (the
    deliverer as configured in production, bar the allow list)."""
    slow = await vendor.project(webhook_url=f"http://127.0.0.1:{await tarpit.start()}/h")
    await _refused_executions(vendor, slow["project_id"], 60)
    receiver = Receiver()
    fast = await vendor.project(
        webhook_url=f"http://127.0.0.1:{await receiver_port(receiver)}/hook"
    )
    fast_id = fast["project_id"]
    await _event(vendor, fast_id)  # queued with the 60
    config = DelivererConfig(allow=LOOPBACK)
    assert config.timeout == 5 and config.poll == 1  # the defaults
    t0 = time.monotonic()
    async with running(vendor.store, config) as deliverer:
        await _wait_for(receiver, 1, 10)
        first = receiver.received[0][0] - t0 if receiver.received else float("inf")
        await asyncio.sleep(1)
        assert tarpit.open == 1  # the deliverer is stuck on the slow endpoint
        t1 = time.monotonic()
        await _event(vendor, fast_id)
        await _wait_for(receiver, 2, 10)
        second = receiver.received[1][0] - t1 if len(receiver.received) > 1 else float("inf")
        print(f"\nfast project's events: queued first {first:.2f} s, queued later {second:.2f} s")
        assert first < 10 and second < 10
        assert tarpit.most_open <= config.per_endpoint
        assert len(receiver.received) == 2 and deliverer.failed_attempts <= 1
    # The slow project's events are all still there (none delivered, none dropped).
    assert await vendor.store.redis.xlen(keyspace.notify(slow["project_id"])) == 60


async def test_a_failing_endpoint_is_paused_and_keeps_its_events(
    vendor: Api, tarpit: Tarpit
) -> None:
    url = f"http://127.0.0.1:{await tarpit.start()}/h"
    pids = [(await vendor.project(webhook_url=url))["project_id"] for _ in range(3)]
    for pid in pids:
        await _refused_executions(vendor, pid, 20)
    config = DelivererConfig(
        poll=0.05, backoff=60, timeout=0.3, connect_timeout=0.2, allow=LOOPBACK,
        breaker_failures=3, breaker_pause=60,
    )  # fmt: skip
    async with running(vendor.store, config) as deliverer:
        await tarpit.wait(closed=3, limit=10)
        await asyncio.sleep(1.5)  # paused: five more timeouts' worth, and nothing is tried
        # Three projects on one endpoint: at most per_endpoint POSTs at a time; the breaker
        # opened after 3 consecutive failures (up to per_endpoint more were in flight).
        assert tarpit.most_open <= config.per_endpoint
        assert 3 <= tarpit.connections <= 3 + config.per_endpoint - 1
        assert deliverer.failed_attempts == tarpit.connections
        assert deliverer.breaker.paused(endpoint(url)) > 50
    pending = 0
    for pid in pids:
        stream = keyspace.notify(pid)
        assert await vendor.store.redis.xlen(stream) == 20  # nothing lost
        pending += (await vendor.store.redis.xpending(stream, "webhooks"))["pending"]
    assert pending == tarpit.connections  # only what was tried was claimed
