"""Expiry: expired keys stay listed during the retention period, then Redis removes them and
every index forgets them."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from handlers.appkeys import STORE
from service.app import create_app
from service.config import Settings
from store import keyspace
from tests.support.api import Api, Clock, keys_matching


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%S")


async def _one_minute_key(api: Api, discord_id: str = "555") -> tuple[str, str, dict[str, Any]]:
    project = await api.project()
    pid = project["project_id"]
    [key] = await api.keys(pid, key_days=0, key_hours=0, key_minutes=1)
    active = await api.redeem(key["key_id"], discord_id=discord_id)
    return pid, key["key_id"], active


async def test_expired_key_listed_during_retention(api: Api, clock: Clock) -> None:
    pid, kid, active = await _one_minute_key(api)
    clock.advance(61)
    now = _iso(clock())
    row = await api.active(kid)
    assert row == active
    assert row["expires_at"] < now
    buyer = await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")
    assert [k["key_id"] for k in buyer] == [kid]
    assert buyer[0]["redeemed"] is True
    by_discord = await api.call("GET", "/api/vendor/keys/active?discord_id=555")
    assert [k["key_id"] for k in by_discord] == [kid]
    # Vendor actions still reach it (it is data, not a valid key).
    await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    assert (await api.active(kid))["banned"] is True


async def test_ttl_is_expiry_plus_retention(real_api: Api, settings: Settings) -> None:
    api = real_api
    assert settings.expired_retention == 3600
    pid, kid, _ = await _one_minute_key(api)
    expected_ms = (60 + settings.expired_retention) * 1000
    for name in (keyspace.key(pid, kid), keyspace.key_ref(api.vendor_id, kid)):
        pttl = await api.store.redis.pttl(name)
        assert expected_ms - 3000 <= pttl <= expected_ms, (name, pttl)
    # The indexes themselves never expire (they are shared by every key of the project).
    for name in (keyspace.buyer_index(pid), keyspace.active_index(pid), keyspace.key_discords(pid)):
        assert await api.store.redis.pttl(name) == -1
    assert await api.store.redis.pttl(keyspace.discord_index(pid, "555")) == -1


async def test_ttl_of_days_hours_key(real_api: Api, settings: Settings) -> None:
    api = real_api
    project = await api.project()
    pid = project["project_id"]
    [key] = await api.keys(pid, key_days=2, key_hours=3, key_minutes=4)
    await api.redeem(key["key_id"])
    expected_ms = (2 * 86400 + 3 * 3600 + 4 * 60 + settings.expired_retention) * 1000
    pttl = await api.store.redis.pttl(keyspace.key(pid, key["key_id"]))
    assert expected_ms - 3000 <= pttl <= expected_ms


async def test_lifetime_and_unredeemed_keys_never_expire(real_api: Api) -> None:
    api = real_api
    project = await api.project()
    pid = project["project_id"]
    lifetime, unredeemed = await api.keys(pid, amount=2, key_days=0, key_hours=0, key_minutes=0)
    active = await api.redeem(lifetime["key_id"])
    assert active["expires_at"] is None
    redis = api.store.redis
    assert await redis.pttl(keyspace.key(pid, lifetime["key_id"])) == -1
    assert await redis.pttl(keyspace.key_ref(api.vendor_id, lifetime["key_id"])) == -1
    assert await redis.pttl(keyspace.key(pid, unredeemed["key_id"])) == -1
    assert await redis.pttl(keyspace.key_ref(api.vendor_id, unredeemed["key_id"])) == -1
    # Vendor actions do not add a TTL either.
    for action in ("ban", "unban", "reset_hwid"):
        await api.call("POST", f"/api/vendor/keys/active/{lifetime['key_id']}/{action}")
    path = f"/api/vendor/keys/active/{lifetime['key_id']}/hwid"
    await api.call("PATCH", path, {"new_hwid": "H"})
    assert await redis.pttl(keyspace.key(pid, lifetime["key_id"])) == -1


async def test_vendor_actions_keep_the_ttl(real_api: Api) -> None:
    api = real_api
    pid, kid, _ = await _one_minute_key(api)
    name = keyspace.key(pid, kid)
    before = await api.store.redis.pttl(name)
    for action in ("ban", "unban", "reset_hwid"):
        await api.call("POST", f"/api/vendor/keys/active/{kid}/{action}")
    await api.call("PATCH", f"/api/vendor/keys/active/{kid}/hwid", {"new_hwid": "H"})
    after = await api.store.redis.pttl(name)
    assert 0 < after <= before
    assert before - after < 2000


async def _wait_until(
    predicate: Callable[[], Awaitable[bool]], within: float, step: float = 0.1
) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(step)


@pytest.fixture
async def short_retention_api(
    aiohttp_client: Any, real_redis: Redis, clock: Clock, tmp_path: Path
) -> Api:
    """A vendor on real Valkey where expired keys are kept 1 s (LEAF7_EXPIRED_RETENTION)."""
    settings = Settings(data_dir=tmp_path / "data", expired_retention=1, max_body=64 * 1024)
    client = await aiohttp_client(create_app(settings, redis=real_redis, clock=clock))
    return await Api(client, client.app[STORE]).login()


async def test_expired_key_is_removed_and_forgotten(short_retention_api: Api, clock: Clock) -> None:
    api = short_retention_api
    redis = api.store.redis

    project = await api.project()
    pid = project["project_id"]
    doomed, unredeemed, other_user = await api.keys(
        pid, amount=3, key_days=0, key_hours=0, key_minutes=1
    )
    [lifetime] = await api.keys(pid, key_days=0, key_hours=0, key_minutes=0)
    kid = doomed["key_id"]

    # Redeemed 60 s "ago": the 1-minute key expires about now (real time, which Redis uses).
    clock.offset = -60
    active = await api.redeem(kid, discord_id="555")
    pttl = await redis.pttl(keyspace.key(pid, kid))
    clock.offset = 0
    assert active["expires_at"] <= _iso(time.time())
    assert pttl == -2 or 0 <= pttl <= 2000, pttl  # expires within ~1 s (or already has)
    await api.redeem(lifetime["key_id"], discord_id="555")
    await api.redeem(other_user["key_id"], discord_id="777")

    await _wait_until(lambda: _gone(redis, keyspace.key(pid, kid)), within=15.0)
    await _wait_until(lambda: _gone(redis, keyspace.key_ref(api.vendor_id, kid)), within=10.0)

    # No listing shows it any more...
    active_rows = await api.call("GET", "/api/vendor/keys/active")
    assert kid not in {r["key_id"] for r in active_rows}
    assert {r["key_id"] for r in active_rows} == {lifetime["key_id"], other_user["key_id"]}
    buyer_rows = await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")
    assert {r["key_id"] for r in buyer_rows} == {
        lifetime["key_id"],
        other_user["key_id"],
        unredeemed["key_id"],
    }
    discord_rows = await api.call("GET", "/api/vendor/keys/active?discord_id=555")
    assert [r["key_id"] for r in discord_rows] == [lifetime["key_id"]]
    filtered = await api.call("GET", f"/api/vendor/keys/active?project_id={pid}&discord_id=555")
    assert [r["key_id"] for r in filtered] == [lifetime["key_id"]]

    # ...and no index of the project references it.
    assert not await redis.sismember(keyspace.buyer_index(pid), kid)
    assert not await redis.sismember(keyspace.active_index(pid), kid)
    assert not await redis.sismember(keyspace.discord_index(pid, "555"), kid)
    assert not await redis.hexists(keyspace.key_discords(pid), kid)
    assert await redis.exists(keyspace.key_ref(api.vendor_id, kid)) == 0
    for name in await keys_matching(redis, f"*{{{pid}}}*"):
        kind = await redis.type(name)
        if kind == "set":
            assert not await redis.sismember(name, kid), name
        elif kind == "hash":
            assert not await redis.hexists(name, kid), name
        assert kid not in name, name
    # The other keys' index entries are intact.
    assert await redis.hgetall(keyspace.key_discords(pid)) == {
        lifetime["key_id"]: "555",
        other_user["key_id"]: "777",
    }

    # Vendor actions on the vanished key: 404, and they do not resurrect anything.
    for action in ("ban", "unban", "reset_hwid"):
        got = await api.call("POST", f"/api/vendor/keys/active/{kid}/{action}", status=404)
        assert got == {"detail": "Key not found"}
    got = await api.call("DELETE", f"/api/vendor/keys/buyer/{kid}", status=404)
    assert got == {"detail": "Key not found"}
    assert await api.redeem(kid, status=404) == {"detail": "Key not found"}
    assert await redis.exists(keyspace.key(pid, kid), keyspace.key_ref(api.vendor_id, kid)) == 0


async def test_expired_key_forgotten_via_each_listing(
    short_retention_api: Api, clock: Clock
) -> None:
    """Whichever listing meets the vanished key first, every index forgets it."""
    api = short_retention_api
    redis = api.store.redis
    listings = [
        "/api/vendor/keys/buyer",
        "/api/vendor/keys/active",
        "/api/vendor/keys/active?discord_id=555",
    ]
    projects: list[tuple[str, str]] = []
    clock.offset = -60
    for _ in listings:
        project = await api.project()
        pid = project["project_id"]
        [key] = await api.keys(pid, key_days=0, key_hours=0, key_minutes=1)
        await api.redeem(key["key_id"], discord_id="555")
        projects.append((pid, key["key_id"]))
    clock.offset = 0
    await _wait_until(
        lambda: _all_gone(redis, [keyspace.key(p, k) for p, k in projects]), within=15.0
    )
    for path, (pid, kid) in zip(listings, projects, strict=True):
        sep = "&" if "?" in path else "?"
        assert await api.call("GET", f"{path}{sep}project_id={pid}") == []
        assert await redis.smembers(keyspace.buyer_index(pid)) == set()
        assert await redis.smembers(keyspace.active_index(pid)) == set()
        assert await redis.hgetall(keyspace.key_discords(pid)) == {}
        assert await redis.exists(keyspace.discord_index(pid, "555")) == 0
        assert await redis.exists(keyspace.key_ref(api.vendor_id, kid)) == 0


async def _gone(redis: Redis, name: str) -> bool:
    return await redis.exists(name) == 0


async def _all_gone(redis: Redis, names: list[str]) -> bool:
    return await redis.exists(*names) == 0
