"""Events (in the same atomic step as what caused them), the overview and the hourly chart."""

import asyncio
import itertools
import re
from typing import Any

from store import keyspace
from tests.support.api import Api, Clock, execute, keys_matching, setup_key


async def events(api: Api, limit: int = 100) -> list[dict[str, Any]]:
    return await api.call("GET", f"/api/vendor/metrics/events?limit={limit}")  # type: ignore[no-any-return]


async def test_events_for_verdicts_and_actions(api: Api) -> None:
    pid, kid = await setup_key(api)
    await api.redeem(kid, discord_id="42")
    await execute(api, pid, kid, hwid="a")
    await execute(api, pid, kid, hwid="b")
    await execute(api, pid, "wrong", hwid="a")
    await api.call("POST", f"/api/vendor/keys/active/{kid}/reset_hwid")
    await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    await execute(api, pid, kid, hwid="a")
    await api.call("POST", f"/api/vendor/keys/active/{kid}/unban")
    rows = await events(api)
    assert [r["message"] for r in rows] == [
        "Key unbanned",
        "Banned key refused",
        "Key banned",
        "HWID reset by the vendor",
        "Invalid key refused",
        "Key used from another HWID",
        "Script executed",
        "Key redeemed",
        "1 buyer keys generated",
    ]
    assert [r["type"] for r in rows[:4]] == ["Success", "Critical", "Critical", "Warning"]
    for r in rows:
        assert set(r) == {"type", "message", "project_id", "key_id", "timestamp"}
        assert r["project_id"] == pid
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", r["timestamp"])
    assert rows[0]["key_id"] == kid and rows[-1]["key_id"] is None
    default = await api.call("GET", "/api/vendor/metrics/events")
    assert default == rows[:4]
    await api.call("GET", "/api/vendor/metrics/events?limit=0", status=422)
    await api.call("GET", "/api/vendor/metrics/events?limit=x", status=422)
    other = await api.as_other()
    assert await events(other) == []


async def test_events_newest_first_across_projects(api: Api) -> None:
    pid1, kid1 = await setup_key(api)
    pid2, kid2 = await setup_key(api)
    # Streams order events by the server's millisecond clock: keep the runs apart.
    for pid, kid in ((pid1, kid1), (pid2, kid2), (pid1, kid1)):
        await asyncio.sleep(0.005)
        await execute(api, pid, kid)
    rows = await events(api, 5)
    assert [(r["project_id"], r["key_id"], r["message"]) for r in rows] == [
        (pid1, kid1, "Script executed"),
        (pid2, kid2, "Script executed"),
        (pid2, kid2, "Key redeemed by the loader"),
        (pid1, kid1, "Script executed"),
        (pid1, kid1, "Key redeemed by the loader"),
    ]


async def test_event_stream_is_capped(real_api: Api) -> None:
    api = real_api
    pid, _ = await setup_key(api)
    body = {"project_id": pid, "script_key": "x" * 32, "hwid": "h"}
    for _ in range(12):
        await asyncio.gather(
            *(api.client.post("/api/loader/execute", json=body) for _ in range(100))
        )
    # 1 + 1200 events appended; MAXLEN ~ 1000 trims whole radix-tree nodes (100 entries).
    assert 1000 <= await api.store.redis.xlen(keyspace.events(pid)) < 1100


def overview(**counts: int) -> dict[str, Any]:
    """The body GET /api/vendor/metrics/overview answers with these counts."""
    return {**counts, "api_status": "Operational"}


async def test_overview(api: Api) -> None:
    body = await api.call("GET", "/api/vendor/metrics/overview")
    assert body == overview(active_projects=0, total_executions=0, active_keys=0)
    pid, kid = await setup_key(api)
    [k2] = await api.keys(pid)
    pid2, _ = await setup_key(api)
    await api.call("PATCH", f"/api/vendor/projects/{pid2}", {"is_active": False})
    for _ in range(3):
        await execute(api, pid, kid)
    await execute(api, pid, k2["key_id"], hwid="z")
    await execute(api, pid, "nope")
    body = await api.call("GET", "/api/vendor/metrics/overview/")
    assert body == overview(active_projects=1, total_executions=4, active_keys=2)


async def test_chart(api: Api, clock: Clock) -> None:
    pid, kid = await setup_key(api, key_days=10)
    await execute(api, pid, kid)
    clock.advance(3600)
    await execute(api, pid, kid)
    await execute(api, pid, kid)
    await execute(api, pid, "nope")  # not counted
    body = await api.call("GET", f"/api/vendor/metrics/chart?project_id={pid}")
    assert set(body) == {"stats", "chartData", "timeLabels"}
    assert body["chartData"] == [0] * 10 + [1, 2]
    assert body["stats"] == {"total_executions": 3, "peak": 2, "average_per_hour": 0.25}
    assert len(body["timeLabels"]) == 12
    assert all(re.fullmatch(r"\d\d:00", label) for label in body["timeLabels"])
    hours = [int(label[:2]) for label in body["timeLabels"]]
    assert all((b - a) % 24 == 1 for a, b in itertools.pairwise(hours))
    everything = await api.call("GET", "/api/vendor/metrics/chart")
    assert everything["chartData"] == body["chartData"]
    clock.advance(12 * 3600)
    body = await api.call("GET", f"/api/vendor/metrics/chart?project_id={pid}")
    assert body["chartData"] == [0] * 12
    other = await api.as_other()
    r = await other.call("GET", f"/api/vendor/metrics/chart?project_id={pid}", status=404)
    assert r == {"detail": "Project not found"}


async def test_hourly_counters_expire(real_api: Api) -> None:
    api = real_api
    pid, kid = await setup_key(api)
    await execute(api, pid, kid)
    counters = await keys_matching(api.store.redis, f"l7:{{{pid}}}:execs:*")
    assert len(counters) == 1
    ttl = await api.store.redis.ttl(counters[0])
    assert 12 * 3600 < ttl <= 13 * 3600
    await api.call("DELETE", f"/api/vendor/projects/{pid}")
    left = await keys_matching(api.store.redis, f"*{{{pid}}}*")
    # Only per-client rate-limit windows remain, and they expire by themselves.
    assert all(":ip:" in k for k in left), left
    for k in left:
        assert await api.store.redis.ttl(k) > 0
