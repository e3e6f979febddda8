"""Rate limits kept in Redis, the brute-force defence and the client IP behind proxies."""

import asyncio
import dataclasses
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict
from redis.asyncio import Redis

from handlers.appkeys import SETTINGS
from handlers.clientip import client_ip, rate_subject, rate_subjects
from service.app import create_app
from service.config import Settings
from store import keyspace
from tests.support.api import Api, Clock, store_of

EXECUTE = "/api/loader/execute"
TOO_MANY = {"detail": "Too many requests"}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


async def make_api(
    aiohttp_client: Any, redis: Redis, clock: Clock, settings: Settings, **changes: Any
) -> Api:
    s = dataclasses.replace(settings, **changes)
    client = await aiohttp_client(create_app(s, redis=redis, clock=clock))
    return await Api(client, store_of(client)).login()


async def behind_proxy(
    aiohttp_client: Any, redis: Redis, clock: Clock, settings: Settings, **changes: Any
) -> Api:
    """make_api behind a trusted proxy at 127.0.0.1 (the test client): X-Forwarded-For names
    the client."""
    proxies = (ipaddress.ip_network("127.0.0.1/32"),)
    return await make_api(
        aiohttp_client, redis, clock, settings, trusted_proxies=proxies, **changes
    )


KeyedApi = Callable[..., Awaitable[tuple[Api, str, str]]]


@pytest.fixture
def keyed_api(
    aiohttp_client: Any, redis_client: Redis, clock: Clock, settings: Settings
) -> KeyedApi:
    """``await keyed_api(**changes)``: make_api on redis_client with ``changes`` to the settings
    (``proxied=True``: behind_proxy), and a project with one lifetime key: (api, pid, kid)."""

    async def make(proxied: bool = False, **changes: Any) -> tuple[Api, str, str]:
        new = behind_proxy if proxied else make_api
        api = await new(aiohttp_client, redis_client, clock, settings, **changes)
        pid, kid = await project_and_key(api)
        return api, pid, kid

    return make


async def execute(
    api: Api, pid: str, key: str, hwid: str = "pc", xff: str | None = None
) -> tuple[int, dict[str, Any], Any]:
    headers = {"X-Forwarded-For": xff} if xff is not None else {}
    body = {"project_id": pid, "script_key": key, "hwid": hwid}
    resp = await api.client.post(EXECUTE, json=body, headers=headers)
    return resp.status, await resp.json(), resp.headers


async def project_and_key(api: Api) -> tuple[str, str]:
    pid = (await api.project())["project_id"]
    [key] = await api.keys(pid, key_days=0)
    return pid, key["key_id"]


@pytest.fixture(autouse=True)
def _frozen_clock(clock: Clock) -> None:
    """These tests assert exact Retry-After values: the service's clock must not tick on."""
    clock.freeze()


def assert_429(status: int, body: Any, headers: Any, limit: int) -> int:
    assert status == 429, body
    assert body == TOO_MANY
    retry = int(headers["Retry-After"])
    assert retry >= 1
    assert headers["X-RateLimit-Limit"] == str(limit)
    assert headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Reset"]) > 0
    return retry


# ---- client IP ----------------------------------------------------------------------------


def _request(peer: str | None, xff: list[str], proxies: str) -> web.Request:
    app = web.Application()
    app[SETTINGS] = Settings.from_env({"LEAF7_TRUSTED_PROXIES": proxies})
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 4321) if name == "peername" and peer is not None else default
    )
    headers = [("X-Forwarded-For", v) for v in xff]
    return make_mocked_request(
        "GET", "/", headers=CIMultiDict(headers), app=app, transport=transport
    )


@pytest.mark.parametrize(
    ("peer", "xff", "proxies", "expected"),
    [
        # No trusted proxy: the header is the client's word and is ignored.
        ("203.0.113.9", ["1.2.3.4"], "", "203.0.113.9"),
        # An untrusted peer that spoofs the header: ignored too.
        ("203.0.113.9", ["1.2.3.4"], "10.0.0.0/8", "203.0.113.9"),
        # Behind a trusted proxy: the right-most untrusted address.
        ("10.0.0.2", ["1.2.3.4"], "10.0.0.0/8", "1.2.3.4"),
        # The client prepended lies; the proxy appended the real peer.
        ("10.0.0.2", ["6.6.6.6, 7.7.7.7, 1.2.3.4"], "10.0.0.0/8", "1.2.3.4"),
        # Two trusted proxies in a row, and a header split over two lines.
        ("10.0.0.2", ["6.6.6.6, 1.2.3.4", "10.1.1.1"], "10.0.0.0/8", "1.2.3.4"),
        # Every entry trusted: the left-most trusted one reached.
        ("10.0.0.2", ["10.9.9.9, 10.1.1.1"], "10.0.0.0/8", "10.9.9.9"),
        # No header from a trusted proxy: the proxy itself.
        ("10.0.0.2", [], "10.0.0.0/8", "10.0.0.2"),
        # Garbage stops the walk at the last address that parsed.
        ("10.0.0.2", ["1.2.3.4, garbage, 10.1.1.1"], "10.0.0.0/8", "10.1.1.1"),
        # Ports and IPv6 brackets; a single trusted address; IPv4-mapped IPv6.
        ("127.0.0.1", ["[2001:db8::1]:443"], "127.0.0.1", "2001:db8::1"),
        ("127.0.0.1", ["198.51.100.7:5555"], "127.0.0.1,::1", "198.51.100.7"),
        ("::ffff:127.0.0.1", ["198.51.100.7"], "127.0.0.1", "198.51.100.7"),
        # A zone is dropped.
        ("127.0.0.1", ["fe80::1%eth0"], "127.0.0.1", "fe80::1"),
        (None, ["1.2.3.4"], "10.0.0.0/8", "unix"),
    ],
)
def test_client_ip(peer: str | None, xff: list[str], proxies: str, expected: str) -> None:
    assert client_ip(_request(peer, xff, proxies)) == expected


def test_rate_subject_groups_ipv6_by_64() -> None:
    assert rate_subject("1.2.3.4") == "1.2.3.4"
    assert rate_subject("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert rate_subject("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert rate_subject("2001:db8:1:3::1") != rate_subject("2001:db8:1:2::1")
    assert rate_subjects("1.2.3.4") == ("1.2.3.4", None)
    assert rate_subjects("unix") == ("unix", None)
    assert rate_subjects("2001:db8:1:2:aaaa::1") == ("2001:db8:1:2::/64", "2001:db8:1::/48")
    assert rate_subjects("2001:db8:1:ffff::9")[1] == "2001:db8:1::/48"


def test_trusted_proxies_config() -> None:
    s = Settings.from_env({"LEAF7_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.1 ,::1,"})
    assert s.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert Settings.from_env({}).trusted_proxies == ()
    from service.config import ConfigError

    with pytest.raises(ConfigError, match="LEAF7_TRUSTED_PROXIES"):
        Settings.from_env({"LEAF7_TRUSTED_PROXIES": "10.0.0.0/8,not-an-ip"})


# ---- execution limit per client IP ----------------------------------------------------------


async def test_execute_limit_per_ip(keyed_api: KeyedApi, clock: Clock) -> None:
    api, pid, kid = await keyed_api(rate_execute=3)
    clock.advance(-(clock() % 60) + 1)  # one second into a window: 59 s left of it
    for left in (2, 1, 0):
        status, body, headers = await execute(api, pid, kid)
        assert status == 200 and body["code"] == "KEY_VALID"
        assert headers["X-RateLimit-Limit"] == "3"
        assert headers["X-RateLimit-Remaining"] == str(left)
    status, body, headers = await execute(api, pid, kid)
    assert assert_429(status, body, headers, 3) == 59
    # Refused checks are not counted and change nothing.
    assert (await api.active(kid))["total_executions"] == 3
    # Wrong keys are limited alike (the limit comes before every key check).
    status, body, headers = await execute(api, pid, "nope")
    assert status == 429
    # Per project: another project of the same vendor is not limited.
    pid2, kid2 = await project_and_key(api)
    assert (await execute(api, pid2, kid2))[0] == 200
    # The next window lets the client in again.
    clock.advance(59)
    status, body, _ = await execute(api, pid, kid)
    assert status == 200 and body["code"] == "KEY_VALID"


async def test_spoofed_forwarded_for_from_untrusted_peer_is_ignored(
    keyed_api: KeyedApi, redis_client: Redis, clock: Clock
) -> None:
    api, pid, kid = await keyed_api(rate_execute=2)
    clock.advance(-(clock() % 60) + 1)
    codes = [(await execute(api, pid, kid, xff=f"10.0.0.{i}"))[0] for i in range(4)]
    assert codes == [200, 200, 429, 429]
    assert await redis_client.exists(keyspace.client(pid, "127.0.0.1"))
    assert not await redis_client.exists(keyspace.client(pid, "10.0.0.0"))


async def test_trusted_proxy_limits_each_forwarded_client(
    keyed_api: KeyedApi, clock: Clock
) -> None:
    api, pid, kid = await keyed_api(proxied=True, rate_execute=2)
    clock.advance(-(clock() % 60) + 1)
    for ip in ("198.51.100.1", "198.51.100.2"):
        codes = [(await execute(api, pid, kid, xff=ip))[0] for _ in range(3)]
        assert codes == [200, 200, 429], ip
    # Lies left of the right-most untrusted address change nothing.
    assert (await execute(api, pid, kid, xff="9.9.9.9, 198.51.100.1"))[0] == 429
    assert (await execute(api, pid, kid, xff="198.51.100.3"))[0] == 200
    # IPv6 clients are counted per /64.
    a = "2001:db8::1"
    b = "2001:db8::2"
    assert [(await execute(api, pid, kid, xff=ip))[0] for ip in (a, b, a)] == [200, 200, 429]


# ---- brute-force defence ------------------------------------------------------------------


async def test_brute_force_block(keyed_api: KeyedApi, clock: Clock) -> None:
    api, pid, kid = await keyed_api(proxied=True, brute_force_limit=3, brute_force_window=600)
    attacker = "203.0.113.66"
    # Other verdicts do not count: only KEY_INCORRECT.
    await execute(api, pid, kid, hwid="a", xff="198.51.100.1")
    for _ in range(3):
        status, body, _ = await execute(api, pid, kid, hwid="b", xff=attacker)
        assert body["code"] == "KEY_HWID_LOCKED"
    for i in range(3):
        status, body, _ = await execute(api, pid, f"guess{i}", xff=attacker)
        assert (status, body["code"]) == (200, "KEY_INCORRECT")
    # Blocked for the window, whatever key it tries: a valid one included.
    status, body, headers = await execute(api, pid, kid, hwid="a", xff=attacker)
    assert assert_429(status, body, headers, 3) == 600
    assert "code" not in body
    clock.advance(599)
    status, body, headers = await execute(api, pid, "guess", xff=attacker)
    assert assert_429(status, body, headers, 3) == 1
    # Another IP, and the attacker in another project, are unaffected.
    assert (await execute(api, pid, kid, hwid="a", xff="198.51.100.1"))[1]["code"] == "KEY_VALID"
    pid2, kid2 = await project_and_key(api)
    assert (await execute(api, pid2, kid2, xff=attacker))[1]["code"] == "KEY_VALID"
    clock.advance(1)
    assert (await execute(api, pid, kid, hwid="a", xff=attacker))[1]["code"] == "KEY_VALID"


async def test_ipv6_48_rotation_is_blocked(
    aiohttp_client: Any, app_redis: Redis, clock: Clock, settings: Settings
) -> None:
    """Failures are counted per /64 and per /48 too: a guesser rotating through the /64s of a
    /48, each under its own limit, blocks the whole /48 (LEAF7_BRUTE_FORCE_LIMIT_48). On
    fakeredis, Valkey and a Valkey Cluster (the /48's hash is one more KEY of the script)."""
    api = await behind_proxy(
        aiohttp_client,
        app_redis,
        clock,
        settings,
        brute_force_limit=3,
        brute_force_limit_48=6,
        brute_force_window=600,
    )
    pid, kid = await project_and_key(api)
    # A single /64 under its own limit is not locked out.
    for i in range(2):
        assert (await execute(api, pid, f"g{i}", xff="2001:db8:7:1::1"))[1]["code"] == (
            "KEY_INCORRECT"
        )
    assert (await execute(api, pid, kid, xff="2001:db8:7:1::2"))[1]["code"] == "KEY_VALID"
    # Rotating: two failures in each of three more /64s of 2001:db8:5::/48.
    for net in range(1, 4):
        for i in range(2):
            status, body, _ = await execute(api, pid, f"g{i}", xff=f"2001:db8:5:{net}::{i + 1}")
            assert (status, body["code"]) == (200, "KEY_INCORRECT"), (net, i)
    # The 6th failure of the /48 blocked it: any /64 of it, with any key.
    status, body, headers = await execute(api, pid, kid, hwid="pc", xff="2001:db8:5:ffff::1")
    assert assert_429(status, body, headers, 6) == 600
    assert await app_redis.exists(keyspace.client(pid, "2001:db8:5::/48"))
    # Another /48 is not, nor are IPv4 clients (which have no /48).
    assert (await execute(api, pid, kid, xff="2001:db8:6::1"))[1]["code"] == "KEY_VALID"
    assert (await execute(api, pid, kid, xff="198.51.100.1"))[1]["code"] == "KEY_VALID"
    # A /48 block lasts the window.
    clock.advance(599)
    assert (await execute(api, pid, kid, xff="2001:db8:5:9::1"))[0] == 429
    clock.advance(1)
    assert (await execute(api, pid, kid, xff="2001:db8:5:9::1"))[1]["code"] == "KEY_VALID"


async def test_ipv6_48_limit_off(keyed_api: KeyedApi, redis_client: Redis) -> None:
    api, pid, kid = await keyed_api(proxied=True, brute_force_limit=3, brute_force_limit_48=0)
    for net in range(1, 6):
        for _ in range(2):
            assert (await execute(api, pid, "g", xff=f"2001:db8:5:{net}::1"))[0] == 200
    assert (await execute(api, pid, kid, xff="2001:db8:5:ff::1"))[1]["code"] == "KEY_VALID"
    assert not await redis_client.exists(keyspace.client(pid, "2001:db8:5::/48"))
    # The /64 limit still holds.
    assert (await execute(api, pid, "g", xff="2001:db8:5:1::1"))[0] == 200  # its 3rd: blocks
    assert (await execute(api, pid, kid, xff="2001:db8:5:1::9"))[0] == 429


def test_brute_force_limit_48_config() -> None:
    assert Settings.from_env({}).brute_force_limit_wide == 80
    assert Settings.from_env({"LEAF7_BRUTE_FORCE_LIMIT": "5"}).brute_force_limit_wide == 20
    env = {"LEAF7_BRUTE_FORCE_LIMIT": "5", "LEAF7_BRUTE_FORCE_LIMIT_48": "7"}
    assert Settings.from_env(env).brute_force_limit_wide == 7
    assert Settings.from_env({"LEAF7_BRUTE_FORCE_LIMIT_48": "0"}).brute_force_limit_wide == 0
    from service.config import ConfigError

    with pytest.raises(ConfigError, match="LEAF7_BRUTE_FORCE_LIMIT_48"):
        Settings.from_env({"LEAF7_BRUTE_FORCE_LIMIT_48": "-1"})


async def test_failures_spread_beyond_the_window_do_not_block(
    keyed_api: KeyedApi, clock: Clock
) -> None:
    api, pid, kid = await keyed_api(brute_force_limit=3, brute_force_window=60)
    for _ in range(5):
        for _ in range(2):
            assert (await execute(api, pid, "wrong"))[1]["code"] == "KEY_INCORRECT"
        clock.advance(61)
    assert (await execute(api, pid, kid))[1]["code"] == "KEY_VALID"


async def test_unknown_project_is_not_counted(
    aiohttp_client: Any, redis_client: Redis, clock: Clock, settings: Settings
) -> None:
    api = await make_api(aiohttp_client, redis_client, clock, settings, rate_execute=1)
    missing = "00000000-0000-4000-8000-000000000000"
    before = await redis_client.dbsize()
    for _ in range(3):
        status, body, headers = await execute(api, missing, "k")
        assert (status, body["code"]) == (200, "PROJECT_NOT_FOUND")
        assert "X-RateLimit-Limit" not in headers
    assert await redis_client.dbsize() == before


# ---- vendor API -----------------------------------------------------------------------------


async def test_vendor_api_limit_per_key(
    aiohttp_client: Any, redis_client: Redis, clock: Clock, settings: Settings
) -> None:
    api = await make_api(aiohttp_client, redis_client, clock, settings, rate_vendor=4)
    clock.advance(-(clock() % 60) + 10)  # 50 s left of the window
    other = await api.as_other()
    for left in (3, 2, 1, 0):
        resp = await api.client.get("/api/vendor/projects", headers=api.auth)
        assert resp.status == 200
        assert resp.headers["X-RateLimit-Limit"] == "4"
        assert resp.headers["X-RateLimit-Remaining"] == str(left)
        assert int(resp.headers["X-RateLimit-Reset"]) == int(clock() // 60 + 1) * 60
    resp = await api.client.get("/api/vendor/projects", headers=api.auth)
    assert assert_429(resp.status, await resp.json(), resp.headers, 4) == 50
    # Every vendor route, writes too; nothing is done.
    resp = await api.client.post("/api/vendor/projects", json={"name": "x"}, headers=api.auth)
    assert resp.status == 429
    # Another vendor's key has its own budget; an unknown key is still 401 (not counted).
    assert (await other.client.get("/api/vendor/projects", headers=other.auth)).status == 200
    bad = {"Authorization": "Bearer l7_unknown"}
    resp = await api.client.get("/api/vendor/projects", headers=bad)
    assert resp.status == 401
    assert "X-RateLimit-Limit" not in resp.headers
    clock.advance(50)
    assert await api.call("GET", "/api/vendor/projects") == []


async def test_vendor_errors_carry_the_limit(
    aiohttp_client: Any, redis_client: Redis, clock: Clock, settings: Settings
) -> None:
    """A limited route's error answers (store errors, malformed or invalid bodies) carry its
    X-RateLimit-* headers too, and count."""
    api = await make_api(aiohttp_client, redis_client, clock, settings, rate_vendor=10)
    clock.advance(-(clock() % 60) + 1)
    missing = "00000000-0000-4000-8000-000000000000"
    answers = [
        await api.client.get(f"/api/vendor/projects/{missing}", headers=api.auth),
        await api.client.post("/api/vendor/projects", data=b"{", headers=api.auth),
        await api.client.post("/api/vendor/projects", json={"name": 5}, headers=api.auth),
        await api.client.get("/api/vendor/projects", headers=api.auth),
    ]
    assert [r.status for r in answers] == [404, 400, 422, 200]
    for left, resp in zip((9, 8, 7, 6), answers, strict=True):
        assert "detail" in await resp.json() or resp.status == 200
        assert resp.headers["X-RateLimit-Limit"] == "10"
        assert resp.headers["X-RateLimit-Remaining"] == str(left)
        assert int(resp.headers["X-RateLimit-Reset"]) == int(clock() // 60 + 1) * 60


async def test_keygen_limit_per_vendor(
    aiohttp_client: Any, redis_client: Redis, clock: Clock, settings: Settings
) -> None:
    api = await make_api(aiohttp_client, redis_client, clock, settings, rate_keygen=2)
    clock.advance(-(clock() % 60) + 1)
    pid = (await api.project())["project_id"]
    await api.keys(pid, amount=10)
    await api.keys(pid, amount=10)
    resp = await api.client.post(
        "/api/vendor/keys/buyer", json={"project_id": pid}, headers=api.auth
    )
    assert_429(resp.status, await resp.json(), resp.headers, 2)
    assert len(await api.call("GET", "/api/vendor/keys/buyer")) == 20
    # Other routes go on; another vendor generates.
    await api.call("GET", "/api/vendor/projects")
    other = await api.as_other()
    await other.keys((await other.project())["project_id"])
    clock.advance(60)
    await api.keys(pid)


async def test_rate_keys_expire(real_api: Api) -> None:
    """Every limit's bookkeeping has a TTL: nothing accumulates."""
    api = real_api
    pid, kid = await project_and_key(api)
    await api.call("GET", "/api/vendor/projects")
    await execute(api, pid, kid)
    await execute(api, pid, "wrong")
    names = [n async for n in api.store.redis.scan_iter("*") if ":rl" in n or ":ip:" in n]
    assert len(names) == 3, names  # the API key's window, keygen's, the client's hash
    for name in names:
        ttl = await api.store.redis.ttl(name)
        assert 0 < ttl <= 601, (name, ttl)


# ---- concurrency on the real server -----------------------------------------------------------


async def test_burst_of_executions_lets_exactly_n_through(
    aiohttp_client: Any, real_redis: Redis, clock: Clock, settings: Settings
) -> None:
    n, k = 25, 15
    api = await make_api(aiohttp_client, real_redis, clock, settings, rate_execute=n)
    pid, kid = await project_and_key(api)
    clock.advance(-(clock() % 60) + 1)  # the burst cannot straddle two windows
    results = await asyncio.gather(*(execute(api, pid, kid) for _ in range(n + k)))
    statuses = [status for status, _, _ in results]
    assert statuses.count(200) == n
    assert statuses.count(429) == k
    assert (await api.active(kid))["total_executions"] == n
    remaining = sorted(int(h["X-RateLimit-Remaining"]) for s, _, h in results if s == 200)
    assert remaining == list(range(n))


async def test_burst_of_vendor_requests_lets_exactly_n_through(
    aiohttp_client: Any, real_redis: Redis, clock: Clock, settings: Settings
) -> None:
    n, k = 20, 10
    api = await make_api(aiohttp_client, real_redis, clock, settings, rate_vendor=n)
    clock.advance(-(clock() % 60) + 1)

    async def create(i: int) -> int:
        resp = await api.client.post(
            "/api/vendor/projects", json={"name": f"p{i}"}, headers=api.auth
        )
        return resp.status

    statuses = await asyncio.gather(*(create(i) for i in range(n + k)))
    assert statuses.count(201) == n
    assert statuses.count(429) == k
    clock.advance(60)
    assert len(await api.call("GET", "/api/vendor/projects")) == n


async def test_burst_from_many_clients_limits_each(
    aiohttp_client: Any, real_redis: Redis, clock: Clock, settings: Settings
) -> None:
    n = 5
    api = await behind_proxy(aiohttp_client, real_redis, clock, settings, rate_execute=n)
    pid = (await api.project(ffa_active=True))["project_id"]
    clock.advance(-(clock() % 60) + 1)
    ips = [f"198.51.100.{i}" for i in range(1, 9)]
    results = await asyncio.gather(
        *(execute(api, pid, "", xff=ip) for ip in ips for _ in range(n + 3))
    )
    per_ip: dict[str, list[int]] = {}
    for (status, _, _), ip in zip(results, [ip for ip in ips for _ in range(n + 3)], strict=True):
        per_ip.setdefault(ip, []).append(status)
    for ip, statuses in per_ip.items():
        assert statuses.count(200) == n, ip
        assert statuses.count(429) == 3, ip


async def test_limits_are_shared_by_instances(
    aiohttp_client: Any, real_redis: Redis, clock: Clock, settings: Settings
) -> None:
    """Two instances on one Redis count into the same windows."""
    n = 10
    a = await make_api(aiohttp_client, real_redis, clock, settings, rate_vendor=n, rate_execute=n)
    s = dataclasses.replace(settings, rate_vendor=n, rate_execute=n)
    b_client = await aiohttp_client(create_app(s, redis=real_redis, clock=clock))
    b = Api(b_client, store_of(b_client))
    b.api_key, b.vendor_id = a.api_key, a.vendor_id
    pid, kid = await project_and_key(a)  # two vendor requests
    clock.advance(60 - clock() % 60 + 1)  # a fresh window, one second in
    results = await asyncio.gather(*(execute(api, pid, kid) for _ in range(n) for api in (a, b)))
    assert [status for status, _, _ in results].count(200) == n

    async def listing(api: Api) -> int:
        return (await api.client.get("/api/vendor/projects", headers=api.auth)).status

    statuses = await asyncio.gather(*(listing(api) for _ in range(n) for api in (a, b)))
    assert statuses.count(200) == n


async def test_limit_outranks_project_inactive(keyed_api: KeyedApi, clock: Clock) -> None:
    api, pid, kid = await keyed_api(rate_execute=2)
    await api.call("PATCH", f"/api/vendor/projects/{pid}", {"is_active": False})
    clock.advance(60 - clock() % 60 + 1)
    results = [await execute(api, pid, kid) for _ in range(3)]
    assert [(s, b.get("code")) for s, b, _ in results] == [
        (200, "PROJECT_INACTIVE"),
        (200, "PROJECT_INACTIVE"),
        (429, None),
    ]
