"""Crack attempts and executors, against real servers: the signed loader's report of a forged
answer (``POST /api/loader/report``: counted per day, a Critical event on the feed and the
webhook, rate limited, bounded input), and executions counted by executor name per hour
(normalised, bounded cardinality) in the loader check's one script."""

import asyncio
import dataclasses
import ipaddress
import time
from typing import Any

import pytest

from handlers.executors import normalise
from service.config import Settings
from service.webhooks import Deliverer, DelivererConfig
from store import analytics, checks, keyspace
from tests.support.api import EXECUTE, Api, Clock, keys_matching, setup_key
from tests.support.hooks import hook_receiver

REPORT = "/api/loader/report"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
FAST = DelivererConfig(poll=0.05, backoff=0.2, timeout=2, allow=LOOPBACK)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The local webhook receiver may be saved (LEAF7_WEBHOOK_ALLOW=127.0.0.0/8)."""
    return dataclasses.replace(settings, webhook_allow=LOOPBACK)


async def report(api: Api, body: Any, status: int = 204) -> dict[str, Any] | None:
    resp = await api.client.post(REPORT, json=body)
    assert resp.status == status, await resp.text()
    return None if status == 204 else await resp.json()  # type: ignore[no-any-return]


async def run(api: Api, pid: str, key: str, executor: str | None, hwid: str = "pc-1") -> str:
    body = {"project_id": pid, "script_key": key, "hwid": hwid}
    if executor is not None:
        body["executor"] = executor
    resp = await api.client.post(EXECUTE, json=body)
    assert resp.status == 200
    code: str = (await resp.json())["code"]
    return code


async def test_a_report_is_a_critical_event_on_the_feed_and_webhook_and_counted(
    api: Api, aiohttp_server: Any
) -> None:
    url, received = await hook_receiver(aiohttp_server)
    pid = (await api.project(webhook_url=url))["project_id"]
    other = (await api.project())["project_id"]
    body = {"project_id": pid, "reason": "bad_signature", "executor": "Synapse X 2.1"}
    await report(api, body)
    await report(api, {"project_id": pid, "reason": "unsigned"})
    await report(api, {"project_id": other, "reason": "stale"})

    [first, second] = [
        e
        for e in await api.call("GET", "/api/vendor/metrics/events?limit=100")
        if e["project_id"] == pid
    ]
    assert second == {
        "type": "Critical",
        "message": "Forged answer refused: bad_signature",
        "project_id": pid,
        "key_id": None,
        "timestamp": second["timestamp"],
    }
    assert first["message"] == "Forged answer refused: unsigned"
    deliverer = Deliverer(api.store, FAST)
    try:
        assert await deliverer.run_once() == 2
    finally:
        await deliverer.close()
    embed = received[0]["embeds"][0]
    assert embed["title"] == "Forged answer refused" and embed["color"] == 0xE74C3C
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Reason"] == "`bad_signature`" and fields["Executor"] == "`synapse`"
    assert fields["IP"] == "`127.0.0.1`"

    counts = await api.call("GET", f"/api/vendor/analytics/reports?project_id={pid}")
    assert counts["days"] == 7 and counts["total"] == 2 and len(counts["daily"]) == 7
    assert counts["daily"][-1]["reasons"] == {"unsigned": 1, "bad_signature": 1}
    assert [d["total"] for d in counts["daily"]] == [0] * 6 + [2]
    everything = await api.call("GET", "/api/vendor/analytics/reports?days=1")
    assert everything["total"] == 3 and everything["daily"][0]["reasons"]["stale"] == 1


async def test_reports_are_counted_per_utc_day(api: Api, clock: Clock) -> None:
    clock.freeze()
    pid = (await api.project())["project_id"]
    await report(api, {"project_id": pid, "reason": "wrong_nonce"})
    clock.advance(86400)
    await report(api, {"project_id": pid, "reason": "wrong_chunk"})
    await report(api, {"project_id": pid, "reason": "wrong_chunk"})
    counts = await api.call("GET", f"/api/vendor/analytics/reports?project_id={pid}&days=3")
    assert [(d["total"], d["reasons"]) for d in counts["daily"]] == [
        (0, {}),
        (1, {"wrong_nonce": 1}),
        (2, {"wrong_chunk": 2}),
    ]
    assert counts["daily"][-1]["day"] == time.strftime("%Y-%m-%d", time.gmtime(clock()))


async def test_a_flood_of_reports_is_counted_but_only_the_first_become_events(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analytics, "REPORT_EVENTS_PER_DAY", 2)
    pid = (await api.project())["project_id"]
    for _ in range(5):
        await report(api, {"project_id": pid, "reason": "unsigned"})
    events = await api.call("GET", "/api/vendor/metrics/events?limit=100")
    assert [e["message"] for e in events if e["project_id"] == pid] == [
        "Forged answer refused: unsigned"
    ] * 2
    counts = await api.call("GET", f"/api/vendor/analytics/reports?project_id={pid}&days=1")
    assert counts["total"] == 5


async def test_reports_are_rate_limited_per_project_and_client_apart_from_checks(
    api_with: Any, app_redis: Any
) -> None:
    api: Api = await api_with(app_redis, rate_execute=2)
    pid, key = await setup_key(api)
    other = (await api.project())["project_id"]
    for left in (1, 0):
        resp = await api.client.post(REPORT, json={"project_id": pid, "reason": "stale"})
        assert resp.status == 204 and resp.headers["X-RateLimit-Remaining"] == str(left)
    resp = await api.client.post(REPORT, json={"project_id": pid, "reason": "stale"})
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert "detail" in await resp.json()
    # Another project's window, and the loader checks' own: untouched.
    await report(api, {"project_id": other, "reason": "stale"})
    assert await run(api, pid, key, None) == "KEY_VALID"
    counts = await api.call("GET", f"/api/vendor/analytics/reports?project_id={pid}&days=1")
    assert counts["total"] == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"project_id": "x", "reason": "unsigned"', 400),  # malformed JSON
        (b'{"project_id": "%s", "reason": "hacked"}', 422),  # not one of the reasons
        (b'{"reason": "unsigned"}', 422),
        (b'{"project_id": "%s", "reason": "unsigned", "executor": "%s"}', 422),  # 101 characters
        (b'{"project_id": "%s", "reason": "unsigned", "pad": "%s"}', 400),  # over 1 KiB
        (b'{"project_id": "not-a-uuid", "reason": "unsigned"}', 404),
        (b'{"project_id": "00000000-0000-4000-8000-000000000000", "reason": "unsigned"}', 404),
    ],
)
async def test_a_bad_report_is_refused_and_counts_nothing(
    api: Api, body: bytes, status: int
) -> None:
    pid = (await api.project())["project_id"]
    pad = b"x" * (101 if status == 422 else 1100)
    filled = body.replace(b"%s", pid.encode(), 1).replace(b"%s", pad)
    resp = await api.client.post(REPORT, data=filled)
    assert resp.status == status
    assert "detail" in await resp.json()
    counts = await api.call("GET", f"/api/vendor/analytics/reports?project_id={pid}&days=1")
    assert counts["total"] == 0
    assert await api.call("GET", "/api/vendor/metrics/events?limit=100") == []


def test_executor_names_are_normalised() -> None:
    assert normalise("Synapse X 2.1.3") == "synapse"
    assert normalise("  KRNL  ") == "krnl"
    assert normalise("Fluxus v7") == "fluxus"
    assert normalise("Wave (x64)") == "wave"
    assert normalise("Arceus X Neo 1.2") == "arceus x"
    assert normalise("MyExec 0.9") == "myexec"
    assert normalise("<b>Evil</b>\n") == "bevilb"
    assert normalise("x" * 100) == "x" * 32
    assert normalise(None) == normalise("") == normalise("  ") == normalise("💀") == "unknown"


async def test_valid_runs_are_counted_by_executor_per_hour(api: Api, clock: Clock) -> None:
    clock.freeze()
    pid, key = await setup_key(api)
    for sent in ("Synapse X 2.1", "synapse z", "Krnl", None, "Wave 1.0"):
        assert await run(api, pid, key, sent) == "KEY_VALID"
    assert await run(api, pid, key, "Krnl", hwid="pc-2") == "KEY_HWID_LOCKED"  # not counted
    clock.advance(3600)
    assert await run(api, pid, key, "KRNL 2") == "KEY_VALID"
    data = await api.call("GET", f"/api/vendor/analytics/executors?project_id={pid}&hours=2")
    assert data["hours"] == 2
    assert data["totals"] == {"krnl": 2, "synapse": 2, "unknown": 1, "wave": 1}
    assert list(data["totals"]) == ["krnl", "synapse", "unknown", "wave"]  # most first
    assert [h["counts"] for h in data["hourly"]] == [
        {"synapse": 2, "krnl": 1, "unknown": 1, "wave": 1},
        {"krnl": 1},
    ]
    assert data["hourly"][-1]["hour"] == time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(clock()))
    day = await api.call("GET", f"/api/vendor/analytics/executors?project_id={pid}")
    assert day["hours"] == 24 and len(day["hourly"]) == 24 and day["totals"]["krnl"] == 2
    # Without project_id: every project of the vendor.
    other, other_key = await setup_key(api)
    assert await run(api, other, other_key, "Krnl") == "KEY_VALID"
    every = await api.call("GET", "/api/vendor/analytics/executors?hours=1")
    assert every["totals"] == {"krnl": 2}
    ttl = await api.store.redis.ttl(keyspace.hourly_executors(pid, int(clock()) // 3600))
    assert 0 < ttl <= 8 * 86400


async def test_executor_names_per_hour_are_capped_the_rest_is_other(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checks, "EXECUTOR_CAP", 3)
    pid, key = await setup_key(api)
    assert await run(api, pid, key, "exec0") == "KEY_VALID"
    # Concurrent checks: script calls of several checks each (the cap holds within a batch).
    codes = await asyncio.gather(*(run(api, pid, key, f"exec{i}") for i in range(1, 6)))
    assert codes == ["KEY_VALID"] * 5
    for n in ("exec0", "exec7"):
        assert await run(api, pid, key, n) == "KEY_VALID"
    data = await api.call("GET", f"/api/vendor/analytics/executors?project_id={pid}&hours=1")
    counts = data["totals"]
    assert sum(counts.values()) == 8 and counts["other"] == 4
    assert len(counts) == 4 and counts.get("exec0", 0) == 2


@pytest.mark.parametrize("query", ["hours=0", "hours=169", "hours=abc", "hours=-1", "days=0"])
async def test_bad_analytics_queries_are_422(api: Api, query: str) -> None:
    pid = (await api.project())["project_id"]
    path = "reports" if query.startswith("days") else "executors"
    data = await api.call(
        "GET", f"/api/vendor/analytics/{path}?project_id={pid}&{query}", None, 422
    )
    assert "detail" in data


async def test_another_vendors_project_is_not_found(api: Api) -> None:
    pid = (await api.project())["project_id"]
    other = await api.as_other()
    for path in ("executors", "reports"):
        data = await other.call("GET", f"/api/vendor/analytics/{path}?project_id={pid}", None, 404)
        assert "detail" in data


async def test_deleting_a_project_deletes_its_counts(api: Api, clock: Clock) -> None:
    pid, key = await setup_key(api)
    assert await run(api, pid, key, "Krnl") == "KEY_VALID"
    await report(api, {"project_id": pid, "reason": "stale"})
    clock.advance(7 * 86400)  # a week later: the counts of a week ago are still kept
    assert await run(api, pid, key, "Wave") == "KEY_VALID"
    await report(api, {"project_id": pid, "reason": "stale"})
    for family in ("executors", "reports"):
        assert len(await keys_matching(api.store.redis, f"l7:{{{pid}}}:{family}:*")) == 2
    assert await api.call("DELETE", f"/api/vendor/projects/{pid}") == {"status": "success"}
    for family in ("executors", "reports"):
        assert await keys_matching(api.store.redis, f"l7:{{{pid}}}:{family}:*") == []
