"""Self-service routes (what the bot calls), single-key lookups and bulk operations."""

import asyncio
from typing import Any

from store import keyspace
from tests.support.api import Api, Clock, execute, setup_key

USER = "424242424242"


async def user_key(api: Api, **fields: Any) -> tuple[str, str]:
    """A project with a key redeemed by USER and bound to HWID "pc-1"."""
    pid, kid = await setup_key(api, **fields)
    await api.redeem(kid, discord_id=USER)
    assert (await execute(api, pid, kid, hwid="pc-1"))["code"] == "KEY_VALID"
    return pid, kid


def reset_url(discord_id: str = USER) -> str:
    return f"/api/vendor/users/{discord_id}/reset_hwid"


async def test_user_keys(api: Api) -> None:
    pid, kid = await user_key(api)
    other_pid, other_kid = await user_key(api)
    rows = await api.call("GET", f"/api/vendor/users/{USER}/keys")
    assert sorted(r["key_id"] for r in rows) == sorted([kid, other_kid])
    rows = await api.call("GET", f"/api/vendor/users/{USER}/keys/?project_id={pid}")
    assert [r["key_id"] for r in rows] == [kid]
    assert rows[0]["discord_id"] == USER and rows[0]["hwid"] == "pc-1"
    assert await api.call("GET", "/api/vendor/users/777/keys") == []
    body = await api.call("GET", "/api/vendor/users/abc/keys", status=422)
    assert "discord_id" in body["detail"]
    other = await api.as_other()
    assert await other.call("GET", f"/api/vendor/users/{USER}/keys") == []
    body = await other.call("GET", f"/api/vendor/users/{USER}/keys?project_id={pid}", status=404)
    assert body == {"detail": "Project not found"}
    del other_pid


async def test_self_reset_and_cooldown(api: Api, clock: Clock) -> None:
    pid, kid = await user_key(api)  # default cooldown 86400 s
    body = await api.call("POST", reset_url(), {"project_id": pid})
    assert body == {"status": "success", "keys_reset": 1}
    key = await api.active(kid)
    assert key["hwid"] is None and key["hwid_resets"] == 1 and key["last_reset"] is not None
    await execute(api, pid, kid, hwid="pc-2")
    resp = await api.client.post(reset_url(), json={"project_id": pid}, headers=api.auth)
    assert resp.status == 429
    body = await resp.json()
    # (The clock is the real one, moved by the tests: a second may tick in between.)
    assert body["detail"] == "HWID reset is on cooldown" and body["retry_after"] in (86399, 86400)
    assert resp.headers["Retry-After"] == str(body["retry_after"])
    assert (await api.active(kid))["hwid"] == "pc-2"  # nothing reset
    clock.advance(86400 - 10)
    body = await api.call("POST", reset_url(), {"project_id": pid}, status=429)
    assert body["retry_after"] in (9, 10)
    clock.advance(10)
    assert (await api.call("POST", reset_url(), {"project_id": pid}))["keys_reset"] == 1


async def test_vendor_reset_bypasses_and_does_not_start_cooldown(api: Api) -> None:
    pid, kid = await user_key(api)
    await api.call("POST", f"/api/vendor/keys/active/{kid}/reset_hwid")
    await execute(api, pid, kid, hwid="pc-2")
    assert (await api.call("POST", reset_url(), {"project_id": pid}))["keys_reset"] == 1
    await execute(api, pid, kid, hwid="pc-3")
    await api.call("POST", reset_url(), {"project_id": pid}, status=429)
    await api.call("POST", f"/api/vendor/keys/active/{kid}/reset_hwid")  # vendor: no cooldown
    assert (await api.active(kid))["hwid_resets"] == 3


async def test_key_without_hwid_is_a_noop_without_cooldown(api: Api) -> None:
    pid, kid = await setup_key(api)
    await api.redeem(kid, discord_id=USER)
    body = await api.call("POST", reset_url(), {"project_id": pid})
    assert body == {"status": "success", "keys_reset": 0}
    assert (await api.active(kid))["hwid_resets"] == 0
    await execute(api, pid, kid, hwid="pc-1")
    assert (await api.call("POST", reset_url(), {"project_id": pid}))["keys_reset"] == 1


async def test_cooldown_zero(api: Api) -> None:
    pid, kid = await user_key(api)
    await api.call("PATCH", f"/api/vendor/projects/{pid}", {"hwid_reset_cooldown": 0})
    for hwid in ["a", "b", "c"]:
        await execute(api, pid, kid, hwid=hwid)
        assert (await api.call("POST", reset_url(), {"project_id": pid}))["keys_reset"] == 1


async def test_banned_key_cannot_self_reset(api: Api) -> None:
    pid, kid = await user_key(api)
    await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    body = await api.call("POST", reset_url(), {"project_id": pid}, status=403)
    assert body == {"detail": "Key is banned"}
    assert (await api.active(kid))["hwid"] == "pc-1"


async def test_self_reset_errors(api: Api) -> None:
    pid, _ = await user_key(api)
    body = await api.call("POST", reset_url("999"), {"project_id": pid}, status=404)
    assert body == {"detail": "Key not found"}
    missing = "00000000-0000-4000-8000-000000000000"
    body = await api.call("POST", reset_url(), {"project_id": missing}, status=404)
    assert body == {"detail": "Project not found"}
    await api.call("POST", reset_url(), {}, status=422)
    await api.call("POST", reset_url("x1"), {"project_id": pid}, status=422)
    other = await api.as_other()
    body = await other.call("POST", reset_url(), {"project_id": pid}, status=404)
    assert body == {"detail": "Project not found"}
    assert (await api.call("GET", f"/api/vendor/users/{USER}/keys"))[0]["hwid"] == "pc-1"


async def test_concurrent_self_resets_reset_once(real_api: Api) -> None:
    api = real_api
    pid, kid = await user_key(api)
    resps = await asyncio.gather(
        *(
            api.client.post(reset_url(), json={"project_id": pid}, headers=api.auth)
            for _ in range(30)
        )
    )
    bodies = [await r.json() for r in resps]
    # Exactly one reset; the others found no HWID left (a no-op) or the cooldown running.
    assert sum(1 for b in bodies if b.get("keys_reset") == 1) == 1
    assert all(b.get("keys_reset") in (0, 1) or b.get("retry_after") for b in bodies)
    assert (await api.active(kid))["hwid_resets"] == 1
    # Bound again and reset at once by 30 callers: all are refused by the running cooldown.
    await execute(api, pid, kid, hwid="pc-2")
    resps = await asyncio.gather(
        *(
            api.client.post(reset_url(), json={"project_id": pid}, headers=api.auth)
            for _ in range(30)
        )
    )
    assert [r.status for r in resps] == [429] * 30


async def test_single_key_lookups(api: Api) -> None:
    pid, kid = await setup_key(api, note="n")
    buyer = await api.call("GET", f"/api/vendor/keys/buyer/{kid}")
    assert buyer["key_id"] == kid and buyer["redeemed"] is False and buyer["note"] == "n"
    body = await api.call("GET", f"/api/vendor/keys/active/{kid}", status=404)
    assert body == {"detail": "Key not found"}
    await api.redeem(kid, discord_id=USER)
    active = await api.call("GET", f"/api/vendor/keys/active/{kid}/")
    assert active == await api.active(kid)
    assert (await api.call("GET", f"/api/vendor/keys/buyer/{kid}"))["redeemed"] is True
    other = await api.as_other()
    for path in [f"/api/vendor/keys/buyer/{kid}", f"/api/vendor/keys/active/{kid}"]:
        assert await other.call("GET", path, status=404) == {"detail": "Key not found"}
    await api.call("GET", "/api/vendor/keys/buyer/nope", status=404)
    del pid


async def test_bulk_delete_unredeemed(api: Api) -> None:
    pid, kid = await setup_key(api)
    more = await api.keys(pid, amount=25)
    await api.redeem(more[0]["key_id"])
    body = await api.call("DELETE", f"/api/vendor/keys/buyer?project_id={pid}&redeemed=false")
    assert body == {"deleted": 25}
    left = await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")
    assert [k["key_id"] for k in left] == [more[0]["key_id"]]
    assert await api.store.redis.exists(keyspace.key_ref(api.vendor_id, kid)) == 0
    assert await api.store.redis.exists(keyspace.key_ref(api.vendor_id, more[0]["key_id"])) == 1
    base = f"/api/vendor/keys/buyer?project_id={pid}"
    await api.call("DELETE", base, status=422)
    await api.call("DELETE", base + "&redeemed=true", status=422)
    await api.call("DELETE", "/api/vendor/keys/buyer?redeemed=false", status=422)
    other = await api.as_other()
    body = await other.call("DELETE", base + "&redeemed=false", status=404)
    assert body == {"detail": "Project not found"}


async def test_extend(api: Api, clock: Clock) -> None:
    pid, kid = await setup_key(api, key_days=1)
    [life] = await api.keys(pid, key_days=0)
    [short] = await api.keys(pid, key_days=0, key_minutes=1)
    [unused] = await api.keys(pid, key_days=1)
    for k in (kid, life["key_id"], short["key_id"]):
        await api.redeem(k)
    before = await api.active(kid)
    short_before = await api.active(short["key_id"])
    clock.advance(120)  # `short` is expired now: it stays expired
    body = await api.call(
        "POST", "/api/vendor/keys/active/extend", {"project_id": pid, "key_days": 2, "key_hours": 1}
    )
    assert body == {"extended": 1}
    after = await api.active(kid)
    from datetime import datetime

    delta = datetime.fromisoformat(after["expires_at"]) - datetime.fromisoformat(
        before["expires_at"]
    )
    assert delta.total_seconds() == 2 * 86400 + 3600
    assert (await api.active(life["key_id"]))["expires_at"] is None
    assert (await api.active(short["key_id"]))["expires_at"] == short_before["expires_at"]
    assert (await execute(api, pid, short["key_id"]))["code"] == "KEY_EXPIRED"
    ttl = await api.store.redis.pttl(keyspace.key(pid, kid))
    assert (3 * 86400 + 3600 - 130) * 1000 < ttl <= (3 * 86400 + 3600 + 3600) * 1000
    ref_ttl = await api.store.redis.pttl(keyspace.key_ref(api.vendor_id, kid))
    assert abs(ref_ttl - ttl) < 5000
    assert (await api.call("GET", f"/api/vendor/keys/buyer/{unused['key_id']}"))[
        "redeemed"
    ] is False
    await api.call("POST", "/api/vendor/keys/active/extend", {"project_id": pid}, status=400)
    await api.call(
        "POST", "/api/vendor/keys/active/extend", {"project_id": pid, "key_days": -1}, status=422
    )


async def test_bulk_operations_on_20000_keys(real_api: Api) -> None:
    api = real_api
    project = await api.project()
    pid = project["project_id"]
    created = await asyncio.gather(*(api.keys(pid, amount=1000, key_days=1) for _ in range(20)))
    ids = [k["key_id"] for batch in created for k in batch]
    redeemed = ids[:2000]
    # Redeem 2,000 through the loader (no Discord), in bounded concurrency.
    sem = asyncio.Semaphore(64)

    async def run(k: str) -> None:
        async with sem:
            await execute(api, pid, k, hwid=k)

    await asyncio.gather(*(run(k) for k in redeemed))
    body = await api.call(
        "POST", "/api/vendor/keys/active/extend", {"project_id": pid, "key_hours": 5}
    )
    assert body == {"extended": 2000}
    body = await api.call("DELETE", f"/api/vendor/keys/buyer?project_id={pid}&redeemed=false")
    assert body == {"deleted": 18000}
    left = await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")
    assert sorted(k["key_id"] for k in left) == sorted(redeemed)
    assert await api.store.redis.scard(keyspace.buyer_index(pid)) == 2000
