"""Fixtures: every HTTP test runs against fakeredis, a real embedded Valkey and a real
3-master Valkey Cluster (started once per session from the bundled binary). Helpers live in
tests/support/; tests that need the real server or the cluster are marked by the fixtures
they use (``pytest -m "not real and not cluster"`` runs the fakeredis ones alone)."""

import dataclasses
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
from service.embedded import EmbeddedValkey
from store.client import connect
from tests.support.api import Api, ApiWith, Clock, store_of
from tests.support.cluster import EmbeddedCluster
from tests.support.faults import Faulty
from tests.support.processes import kill_valkeys


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
    async with await _storage(request, request.param) as client:
        assert isinstance(client, Redis)  # fakeredis or one Valkey: never a cluster
        yield client


@pytest.fixture
async def real_redis(valkey_server: EmbeddedValkey) -> AsyncIterator[Redis]:
    """For what only a real server can prove: Lua atomicity under load, TTLs, concurrency."""
    async with await _real_client(valkey_server) as client:
        yield client


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


@pytest.fixture(params=["fakeredis", "valkey", "cluster"])
async def app_redis(request: pytest.FixtureRequest) -> AsyncIterator["Redis | RedisCluster"]:
    """The storage of the HTTP tests: fakeredis, one real Valkey, a real Valkey Cluster."""
    async with await _storage(request, request.param) as client:
        yield client


@pytest.fixture(params=["valkey", "cluster"])
async def real_storage(request: pytest.FixtureRequest) -> AsyncIterator["Redis | RedisCluster"]:
    """For what only real servers can prove: one Valkey, and a Valkey Cluster."""
    async with await _storage(request, request.param) as client:
        yield client


@pytest.fixture
async def cluster_redis(valkey_cluster: EmbeddedCluster) -> AsyncIterator[RedisCluster]:
    async with await _cluster_client(valkey_cluster) as client:
        yield client


@pytest.fixture
async def app_client(
    aiohttp_client: Any, app_redis: Redis, clock: Clock, settings: Settings
) -> TestClient[Any, Any]:
    app = create_app(settings, redis=app_redis, clock=clock)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


@pytest.fixture
async def api(app_client: TestClient[Any, Any]) -> Api:
    return await Api(app_client, store_of(app_client)).login()


@pytest.fixture
async def real_api(api_with: ApiWith, real_storage: "Redis | RedisCluster") -> Api:
    return await api_with(real_storage)


@pytest.fixture
def api_with(aiohttp_client: Any, clock: Clock, settings: Settings) -> ApiWith:
    """``await api_with(redis, **changes)``: a vendor signed in to the app on ``redis`` (and
    the movable clock), with ``changes`` to the settings (``dataclasses.replace``)."""

    async def make(redis: "Redis | RedisCluster", **changes: Any) -> Api:
        app = create_app(dataclasses.replace(settings, **changes), redis=redis, clock=clock)
        client = await aiohttp_client(app)
        return await Api(client, store_of(client)).login()

    return make


@pytest.fixture
async def valkey_api(api_with: ApiWith, real_redis: Redis) -> Api:
    """One real Valkey only (what a cluster does not do the same way, e.g. WAITAOF)."""
    return await api_with(real_redis)


@pytest.fixture
async def cluster_api(api_with: ApiWith, cluster_redis: RedisCluster) -> Api:
    return await api_with(cluster_redis)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    try:
        yield path
    finally:
        kill_valkeys(path)


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[Faulty]:
    """A real Valkey that can be killed, restarted and SIGSTOPped (tests/support/faults.py)."""
    server = Faulty(tmp_path / "v").start()
    yield server
    server.close()


# Fixtures (or a parametrised storage fixture's values) that need the real server / cluster.
_REAL = {"valkey_server", "real_redis", "valkey_api", "faulty"}
_CLUSTER = {"valkey_cluster", "cluster_redis", "cluster_api"}
_STORAGE_PARAMS = ("redis_client", "app_redis", "real_storage")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = {callspec.params.get(f) for f in _STORAGE_PARAMS} if callspec else set()
        if names & _REAL or "valkey" in params:
            item.add_marker(pytest.mark.real)
        if names & _CLUSTER or "cluster" in params:
            item.add_marker(pytest.mark.cluster)
