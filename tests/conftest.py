"""Fixtures: every HTTP test runs against fakeredis, a real embedded Valkey and a real
3-master Valkey Cluster (started once per session from the bundled binary)."""

import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from service.app import create_app
from service.config import Settings
from service.embedded import EmbeddedCluster, EmbeddedValkey
from store import Store
from store.client import connect

# Rate-limit bookkeeping (windows, per-client counters): short-lived hashes with a TTL that
# limited requests write even when they are refused for another reason.
_RATE_KEY = re.compile(r":rl(:|$)|:ip:")


async def data_size(redis: Redis) -> int:
    """Number of Redis keys that hold data (everything but rate-limit bookkeeping)."""
    return sum([1 async for name in redis.scan_iter(count=1000) if not _RATE_KEY.search(name)])


class Clock:
    """Wall-clock time plus an offset tests can move; ``freeze`` stops it (for exact
    Retry-After figures that a second ticking over mid-test would change)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.frozen: float | None = None

    def __call__(self) -> float:
        return (time.time() if self.frozen is None else self.frozen) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def freeze(self) -> None:
        self.frozen = time.time()


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey")).start()
    yield server
    server.stop()


async def _real_client(server: EmbeddedValkey) -> Redis:
    client = Redis.from_url(server.url, decode_responses=True)
    await client.flushall()
    return client


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    cluster = EmbeddedCluster(tmp_path_factory.mktemp("cluster"), masters=3).start()
    yield cluster
    cluster.stop()


async def _cluster_client(cluster: EmbeddedCluster) -> RedisCluster:
    client = connect(cluster.url)
    assert isinstance(client, RedisCluster)
    await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    return client


async def _storage(request: pytest.FixtureRequest, kind: str) -> "Redis | RedisCluster":
    if kind == "fakeredis":
        client: Redis = fakeredis.FakeAsyncRedis(
            server=fakeredis.FakeServer(), decode_responses=True
        )
        return client
    if kind == "valkey":
        return await _real_client(request.getfixturevalue("valkey_server"))
    return await _cluster_client(request.getfixturevalue("valkey_cluster"))


@pytest.fixture(params=["fakeredis", "valkey"])
async def redis_client(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Redis]:
    if request.param == "fakeredis":
        client: Redis = fakeredis.FakeAsyncRedis(
            server=fakeredis.FakeServer(), decode_responses=True
        )
    else:
        client = await _real_client(request.getfixturevalue("valkey_server"))
    yield client
    await client.aclose()


@pytest.fixture
async def real_redis(valkey_server: EmbeddedValkey) -> AsyncIterator[Redis]:
    """For what only a real server can prove: Lua atomicity under load, TTLs, concurrency."""
    client = await _real_client(valkey_server)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # A generous storage bound: a loaded CI machine can take seconds for an fsync (WAITAOF);
    # the tests of the bound itself set their own (tests/test_outage.py).
    # Limits high enough for any test, but on: every request runs the limiter's code path.
    # Tests of the limits themselves lower them (dataclasses.replace).
    return Settings(
        data_dir=tmp_path / "data",
        expired_retention=3600,
        max_body=64 * 1024,
        rate_vendor=100_000,
        rate_keygen=100_000,
        rate_execute=100_000,
        brute_force_limit=100_000,
        # No background webhook deliverer in HTTP tests: tests/test_webhooks.py drives one.
        webhooks=False,
        redis_timeout=10.0,
    )


class Api:
    """A vendor's view of the HTTP API, for tests."""

    def __init__(self, client: TestClient[Any, Any], store: Store) -> None:
        self.client = client
        self.store = store
        self.api_key = ""
        self.vendor_id = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def login(self, name: str = "vendor", discord_id: str | None = "1234567890") -> "Api":
        self.vendor_id, self.api_key = await self.store.create_vendor(name, discord_id)
        return self

    async def as_other(self, name: str = "other", discord_id: str | None = "999") -> "Api":
        return await Api(self.client, self.store).login(name, discord_id)

    async def call(self, method: str, path: str, json: Any = None, status: int = 200) -> Any:
        resp = await self.client.request(method, path, json=json, headers=self.auth)
        body = await resp.json()
        assert resp.status == status, (resp.status, body)
        return body

    async def project(self, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"name": "Script Hub", **fields}
        return await self.call("POST", "/api/vendor/projects", body, status=201)  # type: ignore[no-any-return]

    async def keys(self, project_id: str, **fields: Any) -> list[dict[str, Any]]:
        body = {"project_id": project_id, **fields}
        return await self.call("POST", "/api/vendor/keys/buyer", body)  # type: ignore[no-any-return]

    async def redeem(self, key_id: str, discord_id: str = "555", status: int = 200) -> Any:
        body = {"key_id": key_id, "discord_id": discord_id}
        return await self.call("POST", "/api/vendor/keys/redeem", body, status=status)

    async def active(self, key_id: str) -> dict[str, Any]:
        rows = await self.call("GET", "/api/vendor/keys/active")
        found = [r for r in rows if r["key_id"] == key_id]
        assert len(found) == 1, rows
        return found[0]  # type: ignore[no-any-return]


@pytest.fixture(params=["fakeredis", "valkey", "cluster"])
async def app_redis(request: pytest.FixtureRequest) -> AsyncIterator["Redis | RedisCluster"]:
    """The storage of the HTTP tests: fakeredis, one real Valkey, a real Valkey Cluster."""
    client = await _storage(request, request.param)
    yield client
    await client.aclose()


@pytest.fixture(params=["valkey", "cluster"])
async def real_storage(request: pytest.FixtureRequest) -> AsyncIterator["Redis | RedisCluster"]:
    """For what only real servers can prove: one Valkey, and a Valkey Cluster."""
    client = await _storage(request, request.param)
    yield client
    await client.aclose()


@pytest.fixture
async def cluster_redis(valkey_cluster: EmbeddedCluster) -> AsyncIterator[RedisCluster]:
    client = await _cluster_client(valkey_cluster)
    yield client
    await client.aclose()


@pytest.fixture
async def app_client(
    aiohttp_client: Any, app_redis: Redis, clock: Clock, settings: Settings
) -> TestClient[Any, Any]:
    app = create_app(settings, redis=app_redis, clock=clock)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


@pytest.fixture
async def real_app_client(
    aiohttp_client: Any, real_storage: Redis, clock: Clock, settings: Settings
) -> TestClient[Any, Any]:
    app = create_app(settings, redis=real_storage, clock=clock)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


@pytest.fixture
async def cluster_app_client(
    aiohttp_client: Any, cluster_redis: RedisCluster, clock: Clock, settings: Settings
) -> TestClient[Any, Any]:
    app = create_app(settings, redis=cluster_redis, clock=clock)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


def _store(client: TestClient[Any, Any]) -> Store:
    from service.appkeys import STORE

    return client.app[STORE]  # type: ignore[index]


@pytest.fixture
async def api(app_client: TestClient[Any, Any]) -> Api:
    return await Api(app_client, _store(app_client)).login()


@pytest.fixture
async def real_api(real_app_client: TestClient[Any, Any]) -> Api:
    return await Api(real_app_client, _store(real_app_client)).login()


@pytest.fixture
async def valkey_api(
    aiohttp_client: Any, real_redis: Redis, clock: Clock, settings: Settings
) -> Api:
    """One real Valkey only (what a cluster does not do the same way, e.g. WAITAOF)."""
    client = await aiohttp_client(create_app(settings, redis=real_redis, clock=clock))
    return await Api(client, _store(client)).login()


@pytest.fixture
async def cluster_api(cluster_app_client: TestClient[Any, Any]) -> Api:
    return await Api(cluster_app_client, _store(cluster_app_client)).login()


async def keys_matching(redis: "Redis | RedisCluster", pattern: str) -> list[str]:
    """KEYS on every primary (a cluster's keys are spread over its nodes)."""
    if isinstance(redis, RedisCluster):
        found: list[str] = await redis.keys(pattern, target_nodes=RedisCluster.PRIMARIES)
        return found
    return list(await redis.keys(pattern))
