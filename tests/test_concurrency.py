"""Races that only a real server can prove: Lua atomicity under concurrent requests."""

import asyncio
import random
from collections import Counter
from typing import Any

from aiohttp import ClientResponse

from store import keyspace
from tests.support.api import Api, keys_matching


async def _send(api: Api, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    resp: ClientResponse = await api.client.request(method, path, json=body, headers=api.auth)
    return resp.status, await resp.json()


async def test_concurrent_redemptions_exactly_one_wins(real_api: Api) -> None:
    api = real_api
    project = await api.project()
    [key] = await api.keys(project["project_id"])
    kid = key["key_id"]
    results = await asyncio.gather(
        *(
            _send(api, "POST", "/api/vendor/keys/redeem", {"key_id": kid, "discord_id": str(i)})
            for i in range(1, 51)
        )
    )
    winners = [body for status, body in results if status == 200]
    losers = [(status, body) for status, body in results if status != 200]
    assert len(winners) == 1, results
    assert losers == [(400, {"detail": "Key already redeemed"})] * 49
    winner = winners[0]
    did = winner["discord_id"]
    assert await api.active(kid) == winner
    # Exactly the winner's Discord index holds the key; no loser left a trace.
    pid = project["project_id"]
    assert await api.store.redis.hgetall(keyspace.key_discords(pid)) == {kid: did}
    assert await api.store.redis.smembers(keyspace.active_index(pid)) == {kid}
    for i in range(1, 51):
        rows = await api.call("GET", f"/api/vendor/keys/active?discord_id={i}")
        assert [r["key_id"] for r in rows] == ([kid] if str(i) == did else [])
    discord_sets = await keys_matching(api.store.redis, keyspace.discord_prefix(pid) + "*")
    assert discord_sets == [keyspace.discord_index(pid, did)]


async def test_concurrent_ban_unban_stay_consistent(real_api: Api) -> None:
    """50 ban/unban calls per key in random order, all at once. Afterwards the banned flags
    and the HWID ban hash agree: a HWID is blocked exactly as often as banned keys hold it.
    Keys a and b have HWIDs of their own; c shares b's."""
    api = real_api
    project = await api.project()
    pid = project["project_id"]
    a, b, c = (k["key_id"] for k in await api.keys(pid, amount=3))
    hwids = {a: "HW-A", b: "HW-B", c: "HW-B"}
    for kid, hwid in hwids.items():
        await api.redeem(kid)
        await api.call("PATCH", f"/api/vendor/keys/active/{kid}/hwid", {"new_hwid": hwid})
    rng = random.Random(7)
    for _ in range(4):
        calls: list[tuple[str, str]] = []
        for kid in hwids:
            n_ban = rng.randint(1, 49)
            calls += [(kid, "ban")] * n_ban + [(kid, "unban")] * (50 - n_ban)
        rng.shuffle(calls)
        results = await asyncio.gather(
            *(_send(api, "POST", f"/api/vendor/keys/active/{kid}/{act}") for kid, act in calls)
        )
        assert results == [(200, {"status": "success"})] * len(calls)
        banned = {kid: (await api.active(kid))["banned"] for kid in hwids}
        expected = Counter(hwid for kid, hwid in hwids.items() if banned[kid])
        bans = await api.store.redis.hgetall(keyspace.hwid_bans(pid))
        assert bans == {hwid: str(n) for hwid, n in expected.items()}, (banned, bans)
        # The single-HWID key: banned <=> its HWID is present with count 1.
        assert (bans.get("HW-A") == "1") is banned[a]
        assert ("HW-A" in bans) is banned[a]
    for kid in hwids:
        await api.call("POST", f"/api/vendor/keys/active/{kid}/unban")
    assert await api.store.redis.hgetall(keyspace.hwid_bans(pid)) == {}
    for kid, hwid in hwids.items():
        assert (await api.active(kid))["hwid"] == hwid


async def test_concurrent_generation_1000_distinct_keys(real_api: Api) -> None:
    api = real_api
    project = await api.project()
    pid = project["project_id"]
    body = {"project_id": pid, "amount": 50}
    results = await asyncio.gather(
        *(_send(api, "POST", "/api/vendor/keys/buyer", body) for _ in range(20))
    )
    assert [status for status, _ in results] == [200] * 20
    created = {k["key_id"] for _, batch in results for k in batch}
    assert len(created) == 1000
    listed = await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")
    assert len(listed) == 1000
    assert {k["key_id"] for k in listed} == created
    assert await api.store.redis.scard(keyspace.buyer_index(pid)) == 1000
    # Every key resolves to its project (the key -> project refs were all written).
    # (One GET each: on a cluster the refs are spread over every node.)
    refs = await asyncio.gather(
        *(api.store.core.call("GET", keyspace.key_ref(api.vendor_id, k)) for k in created)
    )
    assert refs == [pid] * 1000
