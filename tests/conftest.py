"""Fixtures: every HTTP test runs against fakeredis and against a real embedded Valkey."""

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from service.app import create_app
from service.config import Settings
from service.embedded import EmbeddedValkey
from store import Store


class Clock:
    """Wall-clock time plus an offset tests can move."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey")).start()
    yield server
    server.stop()


async def _real_client(server: EmbeddedValkey) -> Redis:
    client = Redis.from_url(server.url, decode_responses=True)
    await client.flushall()
    return client


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
    return Settings(
        data_dir=tmp_path / "data", expired_retention=3600, max_body=64 * 1024, redis_timeout=10.0
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


@pytest.fixture
async def app_client(
    aiohttp_client: Any, redis_client: Redis, clock: Clock, settings: Settings
) -> TestClient[Any, Any]:
    app = create_app(settings, redis=redis_client, clock=clock)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


@pytest.fixture
async def real_app_client(
    aiohttp_client: Any, real_redis: Redis, clock: Clock, settings: Settings
) -> TestClient[Any, Any]:
    app = create_app(settings, redis=real_redis, clock=clock)
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
