"""Helpers of the HTTP tests: a vendor's view of the API, a movable clock, Redis look-ups."""

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from handlers.appkeys import STORE
from store import Store

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
        self.vendor_id, self.api_key = await self.store.vendors.create(name, discord_id)
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


# The conftest fixture ``api_with``: ``await api_with(redis, **changes)`` -> a signed-in Api.
ApiWith = Callable[..., Awaitable["Api"]]


def store_of(client: TestClient[Any, Any]) -> Store:
    return client.app[STORE]  # type: ignore[index]


async def keys_matching(redis: "Redis | RedisCluster", pattern: str) -> list[str]:
    """KEYS on every primary (a cluster's keys are spread over its nodes)."""
    if isinstance(redis, RedisCluster):
        found: list[str] = await redis.keys(pattern, target_nodes=RedisCluster.PRIMARIES)
        return found
    return list(await redis.keys(pattern))


EXECUTE = "/api/loader/execute"


async def execute(
    api: Api,
    project_id: str,
    key_id: str = "",
    hwid: str | None = "hwid-1",
    headers: dict[str, str] | None = None,
    status: int = 200,
) -> dict[str, Any]:
    body: dict[str, Any] = {"project_id": project_id, "script_key": key_id}
    if hwid is not None:
        body["hwid"] = hwid
    resp = await api.client.post(EXECUTE, json=body, headers=headers or {})
    data: dict[str, Any] = await resp.json()
    assert resp.status == status, data
    return data


async def setup_key(api: Api, **key_fields: Any) -> tuple[str, str]:
    project = await api.project()
    pid = project["project_id"]
    [key] = await api.keys(pid, **key_fields)
    return pid, key["key_id"]
