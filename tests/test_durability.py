"""Durable vendor writes: WAITAOF after every write that creates or destroys value.

On a real Valkey the strong test kills the server with SIGKILL right after each 200 and
restarts it on the same files; the others prove that every such write really waited for the
fsync (the server's own WAITAOF count) and that the loader's hot path never does.
"""

import logging
from typing import Any

import fakeredis
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from service.config import Settings
from store import Store, StoreUnavailable
from store.durable import Durability
from tests.support.api import Api, store_of
from tests.support.faults import Faulty, app_on


async def _waitaof_calls(redis: Redis) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return int(stats.get("cmdstat_waitaof", {}).get("calls", 0))


async def test_every_value_write_waits_for_fsync(valkey_api: Api) -> None:
    api = valkey_api
    redis = api.store.redis
    durability = api.store.core.durability
    assert durability.mode == "waitaof"

    async def waits(method: str, path: str, body: Any = None, status: int = 200) -> Any:
        before_server, before_store = await _waitaof_calls(redis), durability.waits
        result = await api.call(method, path, body, status=status)
        assert await _waitaof_calls(redis) - before_server == 1, (method, path)
        assert durability.waits - before_store == 1, (method, path)
        return result

    project = await waits("POST", "/api/vendor/projects", {"name": "Hub"}, status=201)
    pid = project["project_id"]
    await waits("PATCH", f"/api/vendor/projects/{pid}", {"description": "d"})
    await waits("PUT", f"/api/vendor/projects/{pid}/source", {"source": "print(1)"})
    k1, k2, k3 = await waits("POST", "/api/vendor/keys/buyer", {"project_id": pid, "amount": 3})
    await waits("POST", "/api/vendor/keys/redeem", {"key_id": k1["key_id"], "discord_id": "7"})
    kid = k1["key_id"]
    await waits("PATCH", f"/api/vendor/keys/active/{kid}/hwid", {"new_hwid": "H"})
    await waits("POST", f"/api/vendor/keys/active/{kid}/reset_hwid")
    await waits("POST", f"/api/vendor/keys/active/{kid}/ban")
    await waits("POST", f"/api/vendor/keys/active/{kid}/unban")
    await waits("DELETE", f"/api/vendor/keys/buyer/{k2['key_id']}")

    # Reads and the loader's execution check never wait for an fsync.
    before = await _waitaof_calls(redis)
    await api.call("GET", "/api/vendor/keys/buyer")
    await api.call("GET", f"/api/vendor/projects/{pid}")
    for hwid in ("H1", "H1"):
        resp = await api.client.post(
            "/api/loader/execute",
            json={"project_id": pid, "script_key": k3["key_id"], "hwid": hwid},
        )
        assert (await resp.json())["code"] == "KEY_VALID"
    assert await _waitaof_calls(redis) == before

    await waits("DELETE", f"/api/vendor/projects/{pid}")


async def test_failed_write_still_answers_its_error(real_api: Api) -> None:
    """A script that refuses (404) is not turned into anything else by the WAITAOF behind it."""
    api = real_api
    missing = "00000000-0000-4000-8000-000000000000"
    body = await api.call("PATCH", f"/api/vendor/projects/{missing}", {"name": "x"}, status=404)
    assert body == {"detail": "Project not found"}
    body = await api.call(
        "POST", "/api/vendor/keys/buyer", {"project_id": missing, "amount": 2}, status=404
    )
    assert body == {"detail": "Project not found"}
    assert await api.store.redis.keys("l7:kref:*") == []  # the refs made for it were dropped


async def test_durable_write_recovers_from_noscript(valkey_api: Api) -> None:
    api = valkey_api
    project = await api.project()
    pid = project["project_id"]
    await api.store.redis.script_flush()
    before = api.store.core.durability.waits
    keys = await api.keys(pid, amount=2)
    await api.store.redis.script_flush()
    await api.redeem(keys[0]["key_id"])
    assert api.store.core.durability.waits - before >= 2  # (NOSCRIPT: one more for the EVAL)
    assert len(await api.call("GET", "/api/vendor/keys/active")) == 1


async def test_fsync_none_sends_no_waitaof(real_redis: Redis) -> None:
    store = Store(real_redis, fsync="none")
    await store.core.load_scripts()
    before = await _waitaof_calls(real_redis)
    vendor_id, _ = await store.vendors.create("v", "1")
    project = await store.projects.create(vendor_id, {"name": "Hub"})
    await store.licences.generate(
        vendor_id, project.project_id, amount=1, key_days=1, key_hours=0, key_minutes=0, note=None
    )
    assert await _waitaof_calls(real_redis) == before
    assert store.core.durability.waits == 0


async def test_server_without_waitaof_falls_back_once(
    redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """fakeredis has no WAITAOF (like Redis < 7.2): writes still succeed, one warning.
    A real Valkey with AOF switched off refuses WAITAOF and is handled the same way."""
    real = not isinstance(redis_client, fakeredis.FakeAsyncRedis)
    if real:
        await redis_client.config_set("appendonly", "no")
    try:
        caplog.set_level(logging.WARNING, "leaf7.store")
        store = Store(redis_client)
        await store.core.load_scripts()
        vendor_id, _ = await store.vendors.create("v", "1")
        assert store.core.durability.mode == "unsupported"
        project = await store.projects.create(vendor_id, {"name": "Hub"})
        pid = project.project_id
        keys = await store.licences.generate(
            vendor_id, pid, amount=2, key_days=1, key_hours=0, key_minutes=0, note=None
        )
        await store.licences.redeem(vendor_id, keys[0].key_id, "5")
        warnings = [r for r in caplog.records if "WAITAOF" in r.getMessage()]
        assert len(warnings) == 1
        assert len(await store.licences.list_buyer(vendor_id, pid)) == 2
        assert store.core.durability.waits == 0
    finally:
        if real:
            await redis_client.config_set("appendonly", "yes")


def test_waitaof_reply_checks() -> None:
    d = Durability("waitaof", timeout=2.0)
    assert d.command() == ("WAITAOF", 1, 0, 1600)
    d.check([1, 0])
    assert d.waits == 1
    with pytest.raises(StoreUnavailable):
        d.check([0, 0])  # timed out: not known to be on disk, so not acknowledged
    assert d.timeouts == 1
    with pytest.raises(StoreUnavailable):
        d.check(ResponseError("BUSY Redis is busy running a script"))
    assert d.mode == "waitaof"
    d.check(ResponseError("ERR unknown command 'WAITAOF'"))
    assert d.mode == "unsupported" and not d.enabled
    assert Durability("none").enabled is False
    with pytest.raises(ValueError, match="fsync"):
        Durability("always")


# ---- kill -9 right after the 200 ----------------------------------------------------------


async def test_acknowledged_writes_survive_kill_9(
    aiohttp_client: Any, faulty: Faulty, settings: Settings
) -> None:
    client = await app_on(aiohttp_client, faulty, settings)
    api = await Api(client, store_of(client)).login()

    async def ok(method: str, path: str, body: Any = None, status: int = 200) -> Any:
        """One write; SIGKILL the server the moment its 200 arrives; restart on its files."""
        result = await api.call(method, path, body, status=status)
        faulty.restart()
        return result

    project = await ok("POST", "/api/vendor/projects", {"name": "Hub"}, status=201)
    pid = project["project_id"]
    generated: list[str] = []
    for _ in range(5):
        batch = await ok("POST", "/api/vendor/keys/buyer", {"project_id": pid, "amount": 50})
        generated += [k["key_id"] for k in batch]
    kid = generated[0]
    await ok("POST", "/api/vendor/keys/redeem", {"key_id": kid, "discord_id": "42"})
    await ok("PATCH", f"/api/vendor/keys/active/{kid}/hwid", {"new_hwid": "HW-1"})
    await ok("POST", f"/api/vendor/keys/active/{kid}/ban")
    await ok(
        "PUT", f"/api/vendor/projects/{pid}/source", {"source": "print(2)", "version": "2.0.0"}
    )
    await ok("DELETE", f"/api/vendor/keys/buyer/{generated[1]}")

    listed = await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")
    assert {k["key_id"] for k in listed} == set(generated) - {generated[1]}
    active = await api.active(kid)
    assert (active["discord_id"], active["hwid"], active["banned"]) == ("42", "HW-1", True)
    got = await api.call("GET", f"/api/vendor/projects/{pid}")
    assert got["version"] == "2.0.0"
    # The loader sees the ban (its HWID block survived too).
    resp = await client.post(
        "/api/loader/execute",
        json={"project_id": pid, "script_key": generated[2], "hwid": "HW-1"},
    )
    assert (await resp.json())["code"] == "HWID_BANNED"
    assert api.store.core.durability.waits >= 11


async def test_cluster_writes_do_not_wait_for_fsync(cluster_redis: Any) -> None:
    """WAITAOF names no key, so it cannot follow a write to its slot's node: on a cluster the
    store does not send it (the README says what to configure instead)."""
    store = Store(cluster_redis, fsync="waitaof")
    assert store.core.durability.mode == "none"
    assert not store.core.durability.enabled
    await store.core.pipe.close()
