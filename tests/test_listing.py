"""Paged and streamed listings (limit, cursor, X-Next-Cursor), and deleting a large project in
bounded batches."""

import asyncio
import base64
import json
import time
import urllib.request
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from store import StoreUnavailable, keyspace, paging
from tests.support.api import EXECUTE, Api, data_size, execute, keys_matching

BUYER = "/api/vendor/keys/buyer"
ACTIVE = "/api/vendor/keys/active"
BLACKLIST = "/api/vendor/blacklist"
EVENTS = "/api/vendor/metrics/events"


async def seed(api: Api, pid: str, n: int) -> list[str]:
    """``n`` buyer keys, generated through the store 1000 at a time."""
    ids: list[str] = []
    while len(ids) < n:
        keys = await api.store.licences.generate(
            api.vendor_id,
            pid,
            amount=min(1000, n - len(ids)),
            key_days=1,
            key_hours=0,
            key_minutes=0,
            note=None,
        )
        ids += [k.key_id for k in keys]
    return ids


async def page(api: Api, path: str, status: int = 200, **query: Any) -> tuple[Any, str | None]:
    resp = await api.client.get(path, params=query, headers=api.auth)
    body = await resp.json()
    assert resp.status == status, (resp.status, body)
    return body, resp.headers.get("X-Next-Cursor")


async def walk(api: Api, path: str, limit: int, **query: Any) -> list[dict[str, Any]]:
    """Every page of a listing; each page at most ``limit`` items and sorted by creation."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100_000):
        params = {**query, "limit": limit, **({"cursor": cursor} if cursor else {})}
        items, cursor = await page(api, path, **params)
        assert len(items) <= limit
        assert items == sorted(items, key=lambda r: (r.get("created_at") or "", r["key_id"]))
        rows += items
        if cursor is None:
            return rows
    raise AssertionError("the listing never ended")


def ids_of(rows: list[dict[str, Any]]) -> list[str]:
    return [r["key_id"] for r in rows]


@pytest.mark.parametrize("limit", [1000, 7])
async def test_paging_walks_every_key_exactly_once(api: Api, limit: int) -> None:
    pid = (await api.project())["project_id"]
    ids = await seed(api, pid, 2500)
    got = ids_of(await walk(api, BUYER, limit, project_id=pid))
    assert len(got) == len(set(got)) == 2500
    assert set(got) == set(ids)
    # Without project_id: the same keys (the vendor's only project).
    assert sorted(ids_of(await walk(api, BUYER, limit))) == sorted(ids)


@pytest.mark.parametrize("n", [100, 2500])  # a set kept compact (one SSCAN step), a large one
async def test_keys_deleted_and_added_between_pages(api: Api, n: int) -> None:
    pid = (await api.project())["project_id"]
    ids = await seed(api, pid, n)
    seen: list[str] = []
    deleted: set[str] = set()
    added: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"project_id": pid, "limit": 9}
        if cursor:
            params["cursor"] = cursor
        items, cursor = await page(api, BUYER, **params)
        seen += ids_of(items)
        if cursor is None:
            break
        # Between pages: one key not seen yet is deleted, one is added.
        victim = next((i for i in ids if i not in seen and i not in deleted), None)
        if victim is not None and len(deleted) < 20:
            await api.call("DELETE", f"{BUYER}/{victim}")
            deleted.add(victim)
            added |= {k["key_id"] for k in await api.keys(pid)}
    assert len(seen) == len(set(seen)), "a key was listed twice"
    assert not set(seen) & deleted, "a key deleted before its page was listed"
    assert set(ids) - deleted <= set(seen), "a key present all along was missed"
    assert set(seen) <= set(ids) | added


async def test_listing_spans_projects(api: Api) -> None:
    sizes = [30, 0, 1200, 5]
    pids = [(await api.project())["project_id"] for _ in sizes]
    expected: dict[str, str] = {}
    for pid, n in zip(pids, sizes, strict=True):
        expected |= dict.fromkeys(await seed(api, pid, n), pid)
    for limit in (1000, 100, 3):
        rows = await walk(api, BUYER, limit)
        assert len(rows) == len(expected)
        assert {r["key_id"]: r["project_id"] for r in rows} == expected
    # A project deleted while the walk is in it: the walk goes on with the next one. (The
    # first page may span two projects, the first one's rows sorted among the second's: the
    # project the walk is in is the cursor's.)
    first, cursor = await page(api, BUYER, limit=10)
    assert cursor is not None
    current = paging.decode(cursor, "b").project
    assert current in {r["project_id"] for r in first}
    await api.call("DELETE", f"/api/vendor/projects/{current}")
    rest = await walk_from(api, BUYER, cursor, 100)
    # (projects are walked in id order: the ones after it remain, less what the first page
    # already handed out)
    handed_out = {r["key_id"] for r in first}
    remain = {k for k, p in expected.items() if p > current} - handed_out
    assert sorted(ids_of(rest)) == sorted(remain)
    assert {r["project_id"] for r in rest} == {expected[k] for k in remain}


async def walk_from(api: Api, path: str, cursor: str, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    next_: str | None = cursor
    while next_ is not None:
        items, next_ = await page(api, path, limit=limit, cursor=next_)
        rows += items
    return rows


async def test_active_and_discord_listings_page(api: Api) -> None:
    pid = (await api.project())["project_id"]
    ids = await seed(api, pid, 60)
    for i, key_id in enumerate(ids[:40]):
        await api.redeem(key_id, discord_id="555" if i % 2 else "777")
    active = await walk(api, ACTIVE, 7)
    assert sorted(ids_of(active)) == sorted(ids[:40])
    mine = await walk(api, "/api/vendor/users/555/keys", 4, project_id=pid)
    assert sorted(ids_of(mine)) == sorted(ids[1:40:2])
    also = await walk(api, ACTIVE, 3, discord_id="777")
    assert sorted(ids_of(also)) == sorted(ids[0:40:2])
    # A Discord user's cursor is not another's.
    _, cursor = await page(api, "/api/vendor/users/555/keys", limit=2)
    assert cursor is not None
    await page(api, "/api/vendor/users/777/keys", 422, limit=2, cursor=cursor)
    await page(api, ACTIVE, 422, limit=2, cursor=cursor)


async def test_unpaged_listing_is_streamed_and_equals_the_pages(api: Api) -> None:
    pid = (await api.project())["project_id"]
    await seed(api, pid, 2300)
    other = (await api.project())["project_id"]
    await seed(api, other, 10)
    resp = await api.client.get(BUYER, headers=api.auth)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert "X-Request-ID" in resp.headers and "X-RateLimit-Limit" in resp.headers
    assert "X-Next-Cursor" not in resp.headers
    whole = json.loads(await resp.read())  # valid JSON: one array
    assert len(whole) == 2310
    pages = await walk(api, BUYER, 1000)
    assert sorted(whole, key=lambda r: r["key_id"]) == sorted(pages, key=lambda r: r["key_id"])
    # Empty lists stream as [] too, and a cursor works without limit (the rest, streamed).
    empty = (await api.project())["project_id"]
    assert await api.call("GET", f"{BUYER}?project_id={empty}") == []
    first, cursor = await page(api, BUYER, limit=500)
    resp = await api.client.get(BUYER, params={"cursor": cursor or ""}, headers=api.auth)
    rest = json.loads(await resp.read())
    assert len(first) + len(rest) == 2310
    assert not set(ids_of(first)) & set(ids_of(rest))


async def test_unpaged_listing_errors_before_streaming(api: Api) -> None:
    other = await api.as_other()
    theirs = (await other.project())["project_id"]
    body = await api.call("GET", f"{BUYER}?project_id={theirs}", status=404)
    assert body == {"detail": "Project not found"}


def forge(kind: str, project: str, cur: str = "0", after: str = "", left: Any = ()) -> str:
    raw = json.dumps([1, kind, project, cur, after, list(left)]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_cursors_of_another_vendor_give_nothing_of_theirs(api: Api) -> None:
    other = await api.as_other()
    theirs = (await other.project())["project_id"]
    their_ids = await other.store.licences.generate(
        other.vendor_id, theirs, amount=50, key_days=1, key_hours=0, key_minutes=0, note=None
    )
    their_keys = {k.key_id for k in their_ids}
    mine = (await api.project())["project_id"]
    my_ids = set(await seed(api, mine, 20))
    _, their_cursor = await page(other, BUYER, limit=5, project_id=theirs)
    assert their_cursor is not None
    # Their cursor on my listing: my keys only (never theirs), or 422.
    resp = await api.client.get(BUYER, params={"cursor": their_cursor}, headers=api.auth)
    got = await resp.json()
    assert resp.status in (200, 422)
    if resp.status == 200:
        assert not set(ids_of(got)) & their_keys
        assert set(ids_of(got)) <= my_ids
    # Their cursor with their project: 404, as without a cursor.
    await page(api, BUYER, 404, project_id=theirs, cursor=their_cursor, limit=5)
    # Their cursor with my project: 422 (not this listing's).
    await page(api, BUYER, 422, project_id=mine, cursor=their_cursor, limit=5)
    # Forged: my project, their key ids as left-overs: not members of my index, never read.
    forged = forge("b", mine, "end", "", sorted(their_keys)[:5])
    items, _ = await page(api, BUYER, project_id=mine, cursor=forged, limit=5)
    assert not set(ids_of(items)) & their_keys
    # Their project in a forged cursor of my vendor-wide listing: only my projects are walked.
    forged = forge("b", theirs, "0", "", sorted(their_keys)[:5])
    rows = await walk_from(api, BUYER, forged, 100)
    assert not set(ids_of(rows)) & their_keys


@pytest.mark.parametrize("path", [BUYER, ACTIVE, "/api/vendor/users/555/keys", BLACKLIST])
async def test_bad_limit_and_cursor_422(api: Api, path: str) -> None:
    for limit in ("0", "1001", "-1", "abc", "1.5", "", "٣"):
        body, _ = await page(api, path, 422, limit=limit)
        assert body == {"detail": "limit: must be an integer from 1 to 1000"}
    bad_cursors = [
        "garbage",
        "%%%",
        "x" * 4097,
        forge("ev", "", "1-0"),  # another listing's
        forge("b", "not-a-uuid"),
        forge("b", "", "abc"),
        forge("b", "", "0", "", ["../x"]),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
    ]
    for cursor in bad_cursors:
        body, _ = await page(api, path, 422, cursor=cursor)
        assert body == {"detail": "cursor: not a cursor of this listing"}
    # Both at the edges are fine.
    await page(api, path, limit="1")
    await page(api, path, limit="1000")


async def test_events_keep_their_limit_and_page_with_a_cursor(api: Api) -> None:
    pid, key_id = await setup_project_with_key(api)
    for _ in range(12):
        await api.call("POST", f"{ACTIVE}/{key_id}/ban")
        await api.call("POST", f"{ACTIVE}/{key_id}/unban")
    other = (await api.project())["project_id"]
    await seed(api, other, 3)
    default, cursor = await page(api, EVENTS)
    assert len(default) == 4 and cursor is not None
    for limit in ("0", "101", "x"):
        body, _ = await page(api, EVENTS, 422, limit=limit)
        assert body == {"detail": "limit: must be an integer from 1 to 100"}
    await page(api, EVENTS, 422, cursor="nope")
    await page(api, EVENTS, 422, cursor=forge("b", pid))
    everything, none = await page(api, EVENTS, limit=100)
    assert none is None
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        items, cursor = await page(api, EVENTS, limit=5, **({"cursor": cursor} if cursor else {}))
        paged += items
        if cursor is None:
            break
    assert paged == everything
    assert [e["timestamp"] for e in paged] == sorted((e["timestamp"] for e in paged), reverse=True)


async def setup_project_with_key(api: Api) -> tuple[str, str]:
    pid = (await api.project())["project_id"]
    [key] = await api.keys(pid)
    await api.redeem(key["key_id"])
    return pid, key["key_id"]


async def test_blacklist_pages(api: Api) -> None:
    await api.project()
    entries = [(await api.call("POST", BLACKLIST, {"hwid": f"hw-{i}"}))["id"] for i in range(150)]
    for limit in (1000, 7):
        got = [e["id"] for e in await walk_entries(api, limit)]
        assert len(got) == len(set(got)) == 150 and set(got) == set(entries)
    whole = await api.call("GET", BLACKLIST)
    assert {e["id"] for e in whole} == set(entries)
    # Deleting entries between pages: the others still come exactly once.
    first, cursor = await page(api, BLACKLIST, limit=10)
    gone = [e for e in entries if e not in {f["id"] for f in first}][:5]
    for entry_id in gone:
        await api.call("DELETE", f"{BLACKLIST}/{entry_id}")
    rest = [e["id"] for e in await walk_entries(api, 10, cursor)]
    seen = [e["id"] for e in first] + rest
    assert len(seen) == len(set(seen)) and set(seen) == set(entries) - set(gone)


async def walk_entries(api: Api, limit: int, cursor: str | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        items, cursor = await page(
            api, BLACKLIST, limit=limit, **({"cursor": cursor} if cursor else {})
        )
        assert len(items) <= limit
        rows += items
        if cursor is None:
            return rows


async def left_of(redis: Any, pid: str) -> list[str]:
    """The project's keys but its clients' limit windows (they expire by themselves)."""
    return [k for k in await keys_matching(redis, f"*{pid}*") if ":ip:" not in k]


async def test_delete_large_project_leaves_nothing(real_api: Api) -> None:
    api = real_api
    redis = api.store.core.redis
    keep = (await api.project())["project_id"]
    await seed(api, keep, 10)
    before = await data_size(redis)  # type: ignore[arg-type]
    pid = (await api.project())["project_id"]
    ids = await seed(api, pid, 5000)
    for key_id in ids[:30]:
        await api.redeem(key_id, discord_id=str(100 + len(key_id) % 3))
    await api.call("POST", BLACKLIST, {"hwid": "hw"})  # mirrored into both projects
    await execute(api, pid, ids[0])
    before += 2  # the blacklist entry, and its mirror in the other project
    await api.call("DELETE", f"/api/vendor/projects/{pid}")
    assert await left_of(redis, pid) == []
    refs = {keyspace.key_ref(api.vendor_id, i) for i in ids}
    assert not refs & set(await keys_matching(redis, keyspace.key_ref(api.vendor_id, "*")))
    assert await data_size(redis) == before  # type: ignore[arg-type]
    await api.call("DELETE", f"/api/vendor/projects/{pid}", status=404)
    assert len(await api.call("GET", f"{BUYER}?project_id={keep}")) == 10


async def test_delete_stopped_halfway_is_unreachable_and_resumed(real_api: Api) -> None:
    api = real_api
    redis = api.store.core.redis
    pid = (await api.project())["project_id"]
    ids = await seed(api, pid, 2500)
    await api.redeem(ids[0])
    core = api.store.core
    # What a crash after the first step and one batch leaves behind.
    await core.script(
        core.scripts.delete_project,
        [keyspace.project(pid), keyspace.project_tombstone(pid)],
        [api.vendor_id],
    )
    await core.script(
        core.scripts.delete_project_keys,
        [
            keyspace.project_tombstone(pid),
            keyspace.buyer_index(pid),
            keyspace.active_index(pid),
            keyspace.key_discords(pid),
        ],
        [api.vendor_id, keyspace.key_prefix(pid), keyspace.discord_prefix(pid), 1000],
    )
    # Gone for every API and loader call, although keys remain.
    assert len(await keys_matching(redis, f"*{pid}*:key:*")) > 0
    await api.call("GET", f"/api/vendor/projects/{pid}", status=404)
    await api.call("GET", f"{BUYER}?project_id={pid}", status=404)
    assert await api.call("GET", BUYER) == []
    assert await api.call("GET", "/api/vendor/projects") == []
    await api.call("GET", f"{BUYER}/{ids[-1]}", status=404)
    await api.call("GET", f"{ACTIVE}/{ids[0]}", status=404)
    await api.call("POST", f"{ACTIVE}/{ids[0]}/ban", status=404)
    await api.call("POST", BUYER, {"project_id": pid}, status=404)
    assert (await execute(api, pid, ids[0]))["code"] == "PROJECT_NOT_FOUND"
    other = await api.as_other()
    await other.call("DELETE", f"/api/vendor/projects/{pid}", status=404)  # not theirs
    # Deleting again finishes the job.
    await api.call("DELETE", f"/api/vendor/projects/{pid}")
    assert await left_of(redis, pid) == []
    await api.call("DELETE", f"/api/vendor/projects/{pid}", status=404)


@pytest.mark.real
async def test_listing_and_delete_scripts_stay_short(valkey_api: Api, real_redis: Redis) -> None:
    """No script call of a listing or a project delete reads or writes an unbounded number
    of keys: with 20,000 keys, none is slower than 20 ms (SLOWLOG)."""
    api = valkey_api
    pid = (await api.project())["project_id"]
    await seed(api, pid, 20_000)
    await real_redis.config_set("slowlog-log-slower-than", 20_000)
    await real_redis.slowlog_reset()
    try:
        resp = await api.client.get(BUYER, headers=api.auth)
        assert len(json.loads(await resp.read())) == 20_000
        await api.call("DELETE", f"/api/vendor/projects/{pid}")
        slow = [e for e in await real_redis.slowlog_get(128) if "EVAL" in str(e["command"]).upper()]
    finally:
        await real_redis.config_set("slowlog-log-slower-than", 10_000)
    assert slow == [], slow
    assert await left_of(real_redis, pid) == []


@pytest.mark.slow
@pytest.mark.real
async def test_full_listings_do_not_hold_other_vendors(
    valkey_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four unpaged listings of a 20,000-key project at once: they are served in bounded steps
    (no script call reads more than 1000 keys), and another vendor's loader checks go on
    between those steps, every one KEY_VALID and none held for long. How long the checks take
    meanwhile is a figure of bench/listing.py (docs/performance.md), not of this test."""
    api = valkey_api
    pid = (await api.project())["project_id"]
    await seed(api, pid, 20_000)
    other = await api.as_other()
    their_pid = (await other.project())["project_id"]
    [key] = await other.keys(their_pid)
    body = {"project_id": their_pid, "script_key": key["key_id"], "hwid": "h"}
    resp = await api.client.post(EXECUTE, json=body)
    assert (await resp.json())["code"] == "KEY_VALID"

    # Every listing step the store runs: how many keys it may read, and how many it returned.
    core = api.store.core
    list_keys = core.scripts.list_keys
    steps: list[tuple[int, int]] = []
    run_script = core.script

    async def spying(script: Any, keys: Any, args: Any, **kw: Any) -> Any:
        reply = await run_script(script, keys, args, **kw)
        if script is list_keys:
            steps.append((int(args[4]), len(reply[3]) // 2))
        return reply

    monkeypatch.setattr(core, "script", spying)

    url = str(api.client.make_url(f"{BUYER}?project_id={pid}"))

    def read_listing() -> bytes:
        # A client in a thread (urllib), so that reading 4 x 20,000 keys does not sit in the
        # event loop that serves the checks.
        request = urllib.request.Request(url, headers=api.auth)  # noqa: S310 - http://127.0.0.1
        with urllib.request.urlopen(request, timeout=120) as resp:  # noqa: S310
            assert resp.status == 200
            return resp.read()

    longest = 0.0
    codes: list[str] = []
    listed = asyncio.Event()

    async def checks() -> None:
        nonlocal longest
        while not listed.is_set():
            t = time.monotonic()
            resp = await api.client.post(EXECUTE, json=body)
            codes.append((await resp.json())["code"])
            longest = max(longest, time.monotonic() - t)

    checkers = [asyncio.ensure_future(checks()) for _ in range(4)]
    await asyncio.sleep(0.05)
    checks_before = len(codes)
    bodies = await asyncio.gather(*(asyncio.to_thread(read_listing) for _ in range(4)))
    checks_during = len(codes) - checks_before
    listed.set()
    await asyncio.gather(*checkers)

    assert [len(json.loads(b)) for b in bodies] == [20_000] * 4
    # Bounded batches: 4 x 20,000 keys in steps of at most 1000.
    assert all(limit <= 1000 and got <= limit for limit, got in steps), max(steps)
    assert sum(got for _, got in steps) == 80_000
    assert len(steps) >= 80
    # The checks were served while the listings ran, not after them, and all were valid.
    assert checks_during > 0
    assert set(codes) == {"KEY_VALID"}
    assert longest < 10, f"a check waited {longest:.1f} s"  # does not hang


async def test_a_failure_mid_stream_cuts_the_answer(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the stream has started, an error cannot become a status: the connection is cut,
    and the body is never a valid (shorter) JSON array."""
    pid = (await api.project())["project_id"]
    await seed(api, pid, 1500)
    licences = api.store.licences
    real = licences.buyer_page
    calls = 0

    async def failing(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StoreUnavailable("storage timed out")
        return await real(*args)

    monkeypatch.setattr(licences, "buyer_page", failing)
    resp = await api.client.get(BUYER, headers=api.auth)
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
