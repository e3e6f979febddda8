"""Discord role sync over the HTTP API (GET /api/vendor/role_sync/changes, POST
/api/vendor/role_sync/ack), driven by the bot's own client (service/rolesync.py: only an API
key, no store address) against the app on a real port and a real Valkey, and a fake Discord
REST server in the test process: the role follows the keys (redeem, ban, unban, expiry,
project deactivation and role change, a first loader run, the project's deletion), Discord's
rate limits and errors, a bot killed between reading and acknowledging, two bots sharing the
queues, the lease, and one vendor's changes never reaching another vendor's bot."""

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from service.bot import role_sync_from_env
from service.botclient import Leaf7Client
from service.rolesync import DiscordRest, RoleSync, RoleSyncConfig
from store import keyspace
from tests.support.api import Api, ApiWith, Clock, execute
from tests.support.processes import create_vendor, serving

GUILD = "1100000000000000001"
ROLE = "1200000000000000002"
ROLE2 = "1200000000000000003"
CHANGES = "/api/vendor/role_sync/changes"
ACK = "/api/vendor/role_sync/ack"
LEASE = 0.3  # seconds: the tests of re-delivery
LONG_LEASE = 30.0  # the others: a change is never handed out twice while a bot works on it


class FakeDiscord:
    """Discord's two role routes: records the calls it applied, keeps each member's roles,
    answers 429 every ``every_429``-th request, 404 Unknown Member for ``absent`` users,
    ``fail`` 502s first, 403 Missing Access to a bot token not in a guild (``guilds``: token
    -> the guilds its bot is in; a token not named is in every guild), and holds requests
    while ``gate`` is closed."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, str, str, str]] = []  # method, guild, user, role
        self.roles: dict[tuple[str, str], set[str]] = {}
        self.requests = 0
        self.limited = 0
        self.every_429 = 0
        self.absent: set[str] = set()
        self.fail = 0
        self.forbidden = False
        self.refused = 0  # 403s answered
        self.guilds: dict[str, set[str]] = {}
        self.gate = asyncio.Event()
        self.gate.set()
        self.arrived = asyncio.Event()  # a request came in
        self.auth: set[str] = set()
        self.bucket_headers: dict[str, str] = {}

    def app(self) -> web.Application:
        app = web.Application()
        path = "/api/v10/guilds/{guild}/members/{user}/roles/{role}"
        app.router.add_route("PUT", path, self.handle)
        app.router.add_route("DELETE", path, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        token = request.headers.get("Authorization", "")
        self.auth.add(token)
        self.arrived.set()
        await self.gate.wait()
        m = request.match_info
        guild, user, role = m["guild"], m["user"], m["role"]
        headers = {"X-RateLimit-Bucket": "abcd", **self.bucket_headers}
        if self.every_429 and self.requests % self.every_429 == 0:
            self.limited += 1
            return web.json_response(
                {"message": "You are being rate limited.", "retry_after": 0.05, "global": False},
                status=429,
                headers={**headers, "Retry-After": "1", "X-RateLimit-Remaining": "0"},
            )
        if self.fail:
            self.fail -= 1
            return web.json_response({"message": "oops", "code": 0}, status=502)
        member_of = self.guilds.get(token.removeprefix("Bot "))
        if member_of is not None and guild not in member_of:
            self.refused += 1
            return web.json_response({"message": "Missing Access", "code": 50001}, status=403)
        if self.forbidden:
            self.refused += 1
            return web.json_response({"message": "Missing Permissions", "code": 50013}, status=403)
        if user in self.absent:
            return web.json_response({"message": "Unknown Member", "code": 10007}, status=404)
        self.applied.append((request.method, guild, user, role))
        held = self.roles.setdefault((guild, user), set())
        if request.method == "PUT":
            held.add(role)
        else:
            held.discard(role)
        return web.Response(status=204, headers=headers)

    def has(self, user: str, role: str = ROLE, guild: str = GUILD) -> bool:
        return role in self.roles.get((guild, user), set())


@pytest.fixture
async def discord(aiohttp_server: Any) -> tuple[FakeDiscord, str]:
    fake = FakeDiscord()
    server = await aiohttp_server(fake.app(), host="127.0.0.1")
    return fake, str(server.make_url("/api/v10"))


@pytest.fixture
async def rs_api(api_with: ApiWith, real_redis: Redis) -> Api:
    """One real Valkey; a change handed out is never handed out again within a test."""
    return await api_with(real_redis, role_lease=LONG_LEASE)


@pytest.fixture
async def lease_api(api_with: ApiWith, real_redis: Redis) -> Api:
    """One real Valkey with a short lease (LEASE): the tests of re-delivery."""
    return await api_with(real_redis, role_lease=LEASE)


@pytest.fixture
async def rs_real_api(api_with: ApiWith, real_storage: "Redis | RedisCluster") -> Api:
    """One real Valkey and a real Valkey Cluster."""
    return await api_with(real_storage, role_lease=LONG_LEASE)


# A bot that reads without waiting and retries at once (tests step it).
FAST = {"wait": 0.0, "batch": 50, "pause": 0.02, "ack_every": 10.0, "retry": 0.05}


def api_url(api: Api) -> str:
    return str(api.client.make_url("/"))


def sync_for(api: Api, base: str, token: str = "tok", **config: Any) -> RoleSync:  # noqa: S107
    """The bot's role sync: the vendor's API key and a Discord bot token, nothing else."""
    cfg = RoleSyncConfig(**{**FAST, **config})
    client = Leaf7Client(api_url(api), api.api_key, "")
    rest = DiscordRest(token, base, backoff=0.01, max_backoff=0.05)
    return RoleSync(client, rest, cfg)


@contextlib.asynccontextmanager
async def syncing(api: Api, base: str, **config: Any) -> AsyncIterator[RoleSync]:
    """sync_for's role sync, closed when the block ends."""
    sync = sync_for(api, base, **config)
    try:
        yield sync
    finally:
        await close(sync)


async def close(*syncs: RoleSync) -> None:
    for s in syncs:
        await s.rest.close()
        await s.client.close()


async def pending(api: Api) -> int:
    """Changes handed out and not acknowledged, over the vendor's queues."""
    roles = api.store.roles
    counts = [await roles.pending(p) for p in await roles.role_projects(api.vendor_id)]
    return sum(counts) + await roles.pending(vendor_id=api.vendor_id)


async def drain(api: Api, *syncs: RoleSync) -> None:
    """Steps until the vendor's queues have nothing left for anyone (a change held by a bot
    that died comes back once its lease has run out)."""
    for _ in range(400):
        done = await asyncio.gather(*(s.step() for s in syncs))
        if not sum(done):
            if not await pending(api):
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the role queues never drained")


async def wait_for(cond: Callable[[], bool], within: float = 5.0) -> None:
    end = time.monotonic() + within
    while not cond():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.01)


async def redeemed_by(api: Api, pid: str, users: list[str]) -> list[dict[str, Any]]:
    """A one-day key of ``pid`` per entry of ``users``, each redeemed by that user (a user
    named twice holds two keys)."""
    keys = await api.keys(pid, amount=len(users), key_days=1)
    for k, u in zip(keys, users, strict=True):
        await api.redeem(k["key_id"], u)
    return keys


async def role_project(api: Api) -> str:
    project = await api.project(discord_guild_id=GUILD, discord_role_id=ROLE)
    assert (project["discord_guild_id"], project["discord_role_id"]) == (GUILD, ROLE)
    return str(project["project_id"])


async def changes(api: Api, wait: float = 0, limit: int = 50) -> list[dict[str, Any]]:
    got = await api.call("GET", f"{CHANGES}?wait={wait}&limit={limit}")
    assert isinstance(got, list)
    return got


async def ack(api: Api, change_ids: list[str]) -> int:
    got = await api.call("POST", ACK, {"change_ids": change_ids})
    return int(got["acked"])


async def test_role_follows_the_keys(
    rs_real_api: Api, clock: Clock, discord: tuple[FakeDiscord, str]
) -> None:
    """On one Valkey and on a Valkey Cluster (every role script stays in one slot)."""
    api = rs_real_api
    fake, base = discord
    fake.every_429 = 3  # every third request is refused with 429 and retried
    pid = await role_project(api)
    [k1, k2] = await api.keys(pid, amount=2, key_days=0, key_minutes=1)
    async with syncing(api, base) as sync:
        await api.redeem(k1["key_id"], "42")
        await drain(api, sync)
        assert fake.has("42") and fake.auth == {"Bot tok"}
        await api.call("POST", f"/api/vendor/keys/active/{k1['key_id']}/ban")
        await drain(api, sync)
        assert not fake.has("42")
        await api.call("POST", f"/api/vendor/keys/active/{k1['key_id']}/unban")
        await drain(api, sync)
        assert fake.has("42")
        # Replaying changes nothing: every change was acknowledged.
        before = list(fake.applied)
        await drain(api, sync)
        assert fake.applied == before
        assert fake.limited >= 1 and sync.rest.rate_limited == fake.limited
        # Expiry: found by the server's sweep (the store's clock moves past the key's end)
        # while the running bot long-polls.
        clock.advance(61)
        runner = sync_for(api, base, wait=1.0)
        running = asyncio.ensure_future(runner.run())
        try:
            await wait_for(lambda: not fake.has("42"), within=5)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await close(runner)
        await drain(api, sync)
        # Everything acknowledged and deleted; nobody left to re-check.
        redis = api.store.redis
        assert await redis.xlen(keyspace.role_changes(pid)) == 0
        assert await redis.zcard(keyspace.role_checks(pid)) == 0
        # A second key: redeem grants; extend keeps it past the first expiry.
        await api.redeem(k2["key_id"], "43")
        await drain(api, sync)
        assert fake.has("43")
        body = {"project_id": pid, "key_days": 1}
        await api.call("POST", "/api/vendor/keys/active/extend", body)
        clock.advance(61)
        await drain(api, sync)
        assert fake.has("43")  # re-checked at its old end: still valid
        clock.advance(86400)
        await drain(api, sync)
        assert not fake.has("43")


async def test_timed_ban_gives_the_role_back_when_it_ends(
    rs_api: Api, clock: Clock, discord: tuple[FakeDiscord, str]
) -> None:
    api = rs_api
    fake, base = discord
    pid = await role_project(api)
    [k] = await api.keys(pid, key_days=30)
    async with syncing(api, base) as sync:
        await api.redeem(k["key_id"], "77")
        await drain(api, sync)
        assert fake.has("77")
        path = f"/api/vendor/keys/active/{k['key_id']}/ban"
        resp = await api.client.post(path, json={"duration": 60}, headers=api.auth)
        assert resp.status == 200, await resp.text()
        await drain(api, sync)
        assert not fake.has("77")
        clock.advance(61)
        await drain(api, sync)
        assert fake.has("77")


async def test_project_switches_and_role_changes(
    rs_api: Api, clock: Clock, discord: tuple[FakeDiscord, str]
) -> None:
    api = rs_api
    fake, base = discord
    pid = await role_project(api)
    users = ["501", "502", "503"]
    keys = await redeemed_by(api, pid, users)
    path = f"/api/vendor/projects/{pid}"
    async with syncing(api, base) as sync:
        await drain(api, sync)
        assert all(fake.has(u) for u in users)
        await api.call("PATCH", path, {"is_active": False})
        await drain(api, sync)
        assert not any(fake.has(u) for u in users)
        await api.call("PATCH", path, {"is_active": True})
        await drain(api, sync)
        assert all(fake.has(u) for u in users)
        # Another role: the old one goes from everyone, the new one comes.
        await api.call("PATCH", path, {"discord_role_id": ROLE2})
        await drain(api, sync)
        assert all(fake.has(u, ROLE2) and not fake.has(u) for u in users)
        # No role any more: removed, and nothing is written for later changes.
        await api.call("PATCH", path, {"discord_role_id": None})
        await drain(api, sync)
        assert not any(fake.has(u, ROLE2) for u in users)
        n = len(fake.applied)
        await api.call("POST", f"/api/vendor/keys/active/{keys[0]['key_id']}/ban")
        assert await api.store.redis.xlen(keyspace.role_changes(pid)) == 0
        await drain(api, sync)
        assert len(fake.applied) == n


async def test_nothing_is_written_without_a_role(rs_api: Api) -> None:
    api = rs_api
    project = await api.project()
    pid = project["project_id"]
    [k] = await api.keys(pid, key_days=1)
    await api.redeem(k["key_id"], "42")
    await api.call("POST", f"/api/vendor/keys/active/{k['key_id']}/ban")
    await api.call("PATCH", f"/api/vendor/projects/{pid}", {"is_active": False})
    redis = api.store.redis
    assert not await redis.exists(keyspace.role_changes(pid), keyspace.role_checks(pid))
    assert await changes(api) == []


async def test_first_loader_run_of_a_key_that_names_its_user(
    rs_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = rs_api
    fake, base = discord
    pid = await role_project(api)
    [k] = await api.keys(pid, key_days=1)
    kid = k["key_id"]
    # A buyer key that already names its Discord user (as an import may write it).
    redis = api.store.redis
    await redis.hset(keyspace.key(pid, kid), "discord_id", "88")
    await redis.sadd(keyspace.discord_index(pid, "88"), kid)
    await redis.hset(keyspace.key_discords(pid), kid, "88")
    async with syncing(api, base) as sync:
        assert (await execute(api, pid, kid))["code"] == "KEY_VALID"
        assert await redis.xlen(keyspace.role_changes(pid)) == 1
        await execute(api, pid, kid)  # an ordinary check writes nothing for role sync
        assert await redis.xlen(keyspace.role_changes(pid)) == 1
        await drain(api, sync)
        assert fake.has("88")


async def test_member_who_left_and_refusals(rs_api: Api, discord: tuple[FakeDiscord, str]) -> None:
    api = rs_api
    fake, base = discord
    pid = await role_project(api)
    [k1, k2] = await api.keys(pid, amount=2, key_days=1)
    fake.absent.add("61")
    async with syncing(api, base) as sync:
        await api.redeem(k1["key_id"], "61")
        fake.fail = 2  # two 502s, retried with backoff
        await drain(api, sync)
        assert sync.dropped == 0 and sync.applied == 1
        assert await api.store.roles.pending(pid) == 0
        # A missing permission cannot be retried into success: logged and dropped.
        fake.forbidden = True
        await api.redeem(k2["key_id"], "62")
        await drain(api, sync)
        assert sync.dropped == 1 and not fake.has("62")
        # Saving the role again re-syncs everyone once it is fixed.
        fake.forbidden = False
        path = f"/api/vendor/projects/{pid}"
        await api.call("PATCH", path, {"discord_role_id": ROLE})
        await drain(api, sync)
        assert fake.has("62")


async def test_discord_unavailable_leaves_the_change_for_later(
    lease_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    """Discord failing after every retry: the change is not acknowledged, and comes back
    after the lease."""
    api = lease_api
    fake, base = discord
    pid = await role_project(api)
    async with syncing(api, base) as sync:
        sync.rest.attempts = 2
        await redeemed_by(api, pid, ["63"])
        fake.fail = 2
        with pytest.raises(Exception, match="Discord answered 502"):
            await sync.step()
        assert sync.applied == 0 and await api.store.roles.pending(pid) == 1
        await drain(api, sync)
        assert fake.has("63") and sync.applied == 1


async def test_rate_limit_bucket_is_honoured(discord: tuple[FakeDiscord, str]) -> None:
    fake, base = discord
    fake.bucket_headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.3"}
    async with DiscordRest("tok", base) as rest:
        assert await rest.set_role(GUILD, "1", ROLE, True)
        t0 = time.monotonic()
        assert await rest.set_role(GUILD, "2", ROLE, True)  # waits for the bucket's reset
        assert time.monotonic() - t0 >= 0.25
        fake.absent.add("3")
        assert await rest.set_role(GUILD, "3", ROLE, False) is False


async def test_killed_between_read_and_ack_then_restarted(
    lease_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = lease_api
    fake, base = discord
    pid = await role_project(api)
    users = ["901", "902", "903"]
    keys = await redeemed_by(api, pid, users)
    first = sync_for(api, base)
    fake.gate.clear()  # Discord holds the first call
    task = asyncio.ensure_future(first.run())
    await asyncio.wait_for(fake.arrived.wait(), 5)
    task.cancel()  # killed mid-batch: changes read, none acknowledged
    await asyncio.gather(task, return_exceptions=True)
    await close(first)
    assert await api.store.roles.pending(pid) == 3
    fake.gate.set()
    async with syncing(api, base) as second:  # another process
        assert await second.step() == 0  # within the lease: not handed out again yet
        await asyncio.sleep(LEASE + 0.05)
        await drain(api, second)
        assert all(fake.has(u) for u in users)
        assert await api.store.roles.pending(pid) == 0
        assert second.applied == 3
        # Meanwhile the state moved on: still right after the restart.
        await api.call("POST", f"/api/vendor/keys/active/{keys[0]['key_id']}/ban")
        await drain(api, second)
        assert not fake.has(users[0]) and fake.has(users[1])


async def test_two_consumers_never_double_apply(
    rs_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = rs_api
    fake, base = discord
    fake.every_429 = 5
    pid = await role_project(api)
    users = [str(700 + i) for i in range(30)]
    await redeemed_by(api, pid, users)
    a = sync_for(api, base, batch=4)
    b = sync_for(api, base, batch=4)
    try:
        await drain(api, a, b)
        assert all(fake.has(u) for u in users)
        puts = Counter(user for method, _, user, _ in fake.applied if method == "PUT")
        assert puts == Counter(users)  # each change applied once, by one of the two
        assert a.applied + b.applied == 30 and a.applied > 0 and b.applied > 0
    finally:
        await close(a, b)


async def test_an_acknowledgement_that_raced_a_newer_change(
    rs_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    """Two bots, the older change applied last: its acknowledgement finds the keys changed
    since it was handed out and queues the user again, so the role ends right."""
    api = rs_api
    fake, base = discord
    pid = await role_project(api)
    [k] = await redeemed_by(api, pid, ["81"])
    [older] = await changes(api)  # bot 1 takes the grant...
    assert (older["discord_id"], older["grant"]) == ("81", True)
    await api.call("POST", f"/api/vendor/keys/active/{k['key_id']}/ban")
    [newer] = await changes(api)  # ...bot 2 the removal, applied first
    assert (newer["discord_id"], newer["grant"]) == ("81", False)
    async with syncing(api, base) as sync:
        await sync.rest.set_role(GUILD, "81", ROLE, False)
        assert await ack(api, [newer["change_id"]]) == 1
        await sync.rest.set_role(GUILD, "81", ROLE, True)  # bot 1, late
        assert await ack(api, [older["change_id"]]) == 1
        assert fake.has("81")
        await drain(api, sync)
        assert not fake.has("81")


async def test_a_change_not_acknowledged_is_handed_out_again(lease_api: Api) -> None:
    api = lease_api
    pid = await role_project(api)
    await redeemed_by(api, pid, ["91", "92"])
    first = await changes(api)
    assert sorted(c["discord_id"] for c in first) == ["91", "92"]
    assert {(c["project_id"], c["guild_id"], c["role_id"], c["grant"]) for c in first} == {
        (pid, GUILD, ROLE, True)
    }
    assert await changes(api) == []  # leased
    assert await ack(api, [first[0]["change_id"]]) == 1
    await asyncio.sleep(LEASE + 0.05)
    again = await changes(api)
    assert [c["change_id"] for c in again] == [first[1]["change_id"]]
    assert await ack(api, [first[0]["change_id"], first[1]["change_id"]]) == 1
    assert await ack(api, [first[1]["change_id"]]) == 0  # acknowledged already
    await asyncio.sleep(LEASE + 0.05)
    assert await changes(api) == []
    assert await api.store.redis.xlen(keyspace.role_changes(pid)) == 0


async def test_the_long_poll_answers_when_a_change_comes(rs_api: Api) -> None:
    api = rs_api
    pid = await role_project(api)
    [k] = await api.keys(pid, key_days=1)
    t0 = time.monotonic()
    assert await changes(api, wait=0.3) == []  # waited, nothing came
    assert time.monotonic() - t0 >= 0.25
    poll = asyncio.ensure_future(changes(api, wait=30))
    await asyncio.sleep(0.3)
    assert not poll.done()
    await api.redeem(k["key_id"], "93")
    got = await asyncio.wait_for(poll, 10)  # (does not hang until the 30 s)
    assert [(c["discord_id"], c["grant"]) for c in got] == [("93", True)]


async def test_bad_requests(api: Api) -> None:
    """On fakeredis too."""
    for query in ("wait=31", "wait=-1", "wait=soon", "wait=nan", "limit=0", "limit=101"):
        resp = await api.client.get(f"{CHANGES}?{query}", headers=api.auth)
        assert resp.status == 422, query
        assert "detail" in await resp.json()
    assert (await api.client.get(CHANGES)).status == 401
    assert (await api.client.post(ACK, json={"change_ids": []})).status == 401
    for body in ({}, {"change_ids": "x"}, {"change_ids": ["x" * 97]}):
        resp = await api.client.post(ACK, json=body, headers=api.auth)
        assert resp.status == 422, body
    garbage = ["x", "revoke:1-1:0", f"{'0' * 8}-0000-4000-8000-{'0' * 12}:1-1:1", "a:b:c"]
    assert await ack(api, garbage) == 0
    assert await changes(api, limit=1) == []


async def test_another_vendors_change_is_never_acknowledged(
    lease_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = lease_api
    other = await api.as_other()
    pid = await role_project(api)
    await redeemed_by(api, pid, ["94"])
    gone = await role_project(api)
    await redeemed_by(api, gone, ["95"])
    await api.call("DELETE", f"/api/vendor/projects/{gone}")
    mine = await changes(api)
    assert sorted((c["project_id"], c["discord_id"], c["grant"]) for c in mine) == sorted(
        [(pid, "94", True), (gone, "95", False)]
    )
    ids = [c["change_id"] for c in mine]
    assert await changes(other) == []  # nothing of A reaches B
    assert await ack(other, ids) == 0  # nor does B's acknowledgement reach A's queues
    assert await pending(api) == 2
    await asyncio.sleep(LEASE + 0.05)
    assert sorted(c["change_id"] for c in await changes(api)) == sorted(ids)  # still A's
    assert await ack(api, ids) == 2


async def test_import_queues_no_role_change(rs_api: Api, discord: tuple[FakeDiscord, str]) -> None:
    """Keys imported as redeemed by Discord users only say who redeemed them (anyone can
    claim that): no role moves until the vendor saves the project's role settings."""
    api = rs_api
    fake, base = discord
    pid = await role_project(api)
    keys = [
        {"key_id": f"IMPORTED-{i}", "redeemed": True, "discord_id": str(960 + i)} for i in range(3)
    ]
    await api.call("POST", "/api/vendor/keys/import", {"project_id": pid, "keys": keys})
    assert not await api.store.redis.exists(keyspace.role_changes(pid))
    assert await changes(api) == []
    async with syncing(api, base) as sync:
        await api.call("PATCH", f"/api/vendor/projects/{pid}", {"discord_role_id": ROLE})
        await drain(api, sync)
        assert all(fake.has(str(960 + i)) for i in range(3))


async def test_deleting_the_project_removes_the_role(
    rs_real_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    """On one Valkey and on a Valkey Cluster: the vendor's revoke stream is in its slot."""
    api = rs_real_api
    fake, base = discord
    pid = await role_project(api)
    users = ["301", "302", "303"]
    await redeemed_by(api, pid, [*users, "303"])  # 303 holds two keys
    async with syncing(api, base) as sync:
        await drain(api, sync)
        assert all(fake.has(u) for u in users)
        fake.applied.clear()
        await api.call("DELETE", f"/api/vendor/projects/{pid}")
        redis = api.store.redis
        # Queued before the bot ran: each user once, with what to remove, for this vendor.
        entries = await redis.xrange(keyspace.role_revokes(api.vendor_id))
        assert sorted(f["discord_id"] for _, f in entries) == users
        assert {(f["guild"], f["role"], f["project_id"]) for _, f in entries} == {
            (GUILD, ROLE, pid)
        }
        assert not await redis.exists(keyspace.role_changes(pid), keyspace.key_discords(pid))
        await drain(api, sync)
        assert sorted(fake.applied) == sorted(("DELETE", GUILD, u, ROLE) for u in users)
        assert not any(fake.has(u) for u in users)
        assert await redis.xlen(keyspace.role_revokes(api.vendor_id)) == 0
        # Replays change nothing: the changes are acknowledged and deleted.
        await drain(api, sync)
        assert len(fake.applied) == 3


async def test_delete_then_bot_killed_and_restarted_still_removes_the_role(
    lease_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = lease_api
    fake, base = discord
    pid = await role_project(api)
    users = ["311", "312", "313"]
    fake.absent.add("313")  # left the server: done, not an error
    await redeemed_by(api, pid, users)
    first = sync_for(api, base)
    await drain(api, first)
    await close(first)
    await api.call("DELETE", f"/api/vendor/projects/{pid}")
    # The vendor's bot, started after the delete; killed while Discord holds its first call:
    # changes read, none acknowledged.
    second = sync_for(api, base)
    fake.gate.clear()
    fake.arrived.clear()
    task = asyncio.ensure_future(second.run())
    try:
        await asyncio.wait_for(fake.arrived.wait(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await close(second)
    assert await api.store.roles.pending(vendor_id=api.vendor_id) == 3
    assert fake.has("311") and fake.has("312")
    fake.gate.set()
    async with syncing(api, base) as third:  # restarted
        await asyncio.sleep(LEASE + 0.05)
        await drain(api, third)
        assert not fake.has("311") and not fake.has("312")
        assert third.applied == 3 and third.dropped == 0
        assert await api.store.roles.pending(vendor_id=api.vendor_id) == 0
        assert await api.store.redis.xlen(keyspace.role_revokes(api.vendor_id)) == 0


async def test_a_resumed_delete_queues_the_users_still_there(
    rs_api: Api, discord: tuple[FakeDiscord, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete that died while queueing (after the tombstone) is resumed by deleting again:
    every user is queued, none lost, before any key goes."""
    api = rs_api
    fake, base = discord
    pid = await role_project(api)
    users = ["321", "322", "323"]
    await redeemed_by(api, pid, users)
    core = api.store.core
    real_write = core.write

    async def dying_write(commands: Any) -> Any:
        if commands[0][0] == "XADD":  # the first batch of revokes: the process dies
            raise ConnectionError("killed")
        return await real_write(commands)

    monkeypatch.setattr(core, "write", dying_write)
    with pytest.raises(ConnectionError):
        await api.store.projects.delete(api.vendor_id, pid)
    redis = api.store.redis
    revokes = keyspace.role_revokes(api.vendor_id)
    assert await redis.hlen(keyspace.key_discords(pid)) == 3  # nothing deleted yet
    assert await redis.xlen(revokes) == 0
    monkeypatch.undo()  # restarted
    await api.call("DELETE", f"/api/vendor/projects/{pid}")  # resumed
    entries = await redis.xrange(revokes)
    assert sorted(f["discord_id"] for _, f in entries) == users
    async with syncing(api, base) as sync:
        await drain(api, sync)
        assert sorted(fake.applied) == sorted(("DELETE", GUILD, u, ROLE) for u in users)


async def test_another_project_with_the_same_role_keeps_it(
    rs_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = rs_api
    fake, base = discord
    pid = await role_project(api)
    other = await role_project(api)  # same guild and role
    [a1, a2, a3] = await api.keys(pid, amount=3, key_days=1)
    [b1, b2] = await api.keys(other, amount=2, key_days=1)
    await api.redeem(a1["key_id"], "331")  # also a valid key in `other`: keeps the role
    await api.redeem(b1["key_id"], "331")
    await api.redeem(a2["key_id"], "332")  # only in the deleted project: loses it
    await api.redeem(a3["key_id"], "333")  # had a key in `other`, banned after: loses it
    await api.redeem(b2["key_id"], "333")
    async with syncing(api, base) as sync:
        await drain(api, sync)
        assert fake.has("331") and fake.has("332") and fake.has("333")
        await api.call("POST", f"/api/vendor/keys/active/{b2['key_id']}/ban")
        fake.applied.clear()
        await api.call("DELETE", f"/api/vendor/projects/{pid}")
        await drain(api, sync)
        assert fake.has("331") and not fake.has("332") and not fake.has("333")
        # (333's ban reaches Discord through `other`'s own stream as well.)
        assert {(m, u) for m, _, u, _ in fake.applied if m == "DELETE"} == {
            ("DELETE", "332"),
            ("DELETE", "333"),
        }
        assert await api.store.redis.xlen(keyspace.role_revokes(api.vendor_id)) == 0


async def test_a_big_project_is_queued_in_bounded_writes(
    rs_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = rs_api
    pid = await role_project(api)
    n = 2500
    redis = api.store.redis
    # Key -> Discord id entries as redeems leave them (the queue reads nothing else).
    await redis.hset(
        keyspace.key_discords(pid), mapping={f"k{i}": str(10**17 + i) for i in range(n)}
    )
    core = api.store.core
    real_write = core.write
    sizes: list[int] = []
    xadds = 0

    async def counting_write(commands: Any) -> Any:
        nonlocal xadds
        sizes.append(len(commands))
        xadds += sum(1 for c in commands if c[0] == "XADD")
        return await real_write(commands)

    monkeypatch.setattr(core, "write", counting_write)
    await api.call("DELETE", f"/api/vendor/projects/{pid}")
    assert max(sizes) <= 1000 and xadds >= n  # (HSCAN may repeat a field)
    entries = await redis.xrange(keyspace.role_revokes(api.vendor_id))
    assert {f["discord_id"] for _, f in entries} == {str(10**17 + i) for i in range(n)}
    assert not await redis.exists(keyspace.key_discords(pid))


async def test_bot_runs_role_sync_with_no_redis_url(
    rs_api: Api, discord: tuple[FakeDiscord, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``leaf7 bot``'s role sync, configured from an environment with no REDIS_URL: the API
    key is all it holds."""
    api = rs_api
    fake, base = discord
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DISCORD_API_BASE", base)
    configured = role_sync_from_env(os.environ)
    assert configured is not None
    found_base, config = configured
    pid = await role_project(api)
    await redeemed_by(api, pid, ["97"])
    async with (
        Leaf7Client(api_url(api), api.api_key, pid) as client,
        DiscordRest("tok", found_base) as rest,
    ):
        config.wait, config.pause = 1.0, 0.02
        task = asyncio.ensure_future(RoleSync(client, rest, config).run())
        try:
            await wait_for(lambda: fake.has("97"))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


# ------------------------------------------------------ one vendor against another, for real


async def _drain_http(*syncs: RoleSync) -> None:
    """Steps until a round reads nothing (no store to look at: a real ``leaf7 serve``)."""
    for _ in range(100):
        if not sum(await asyncio.gather(*(s.step() for s in syncs))):
            return
    raise AssertionError("the role queues never drained")


async def test_another_vendor_cannot_remove_roles_in_my_guild(
    data_dir: Path, discord: tuple[FakeDiscord, str]
) -> None:
    """Issue 22, defect 1, end to end on a real ``leaf7 serve``: vendor B names A's guild and
    role in a project, imports keys "redeemed" by A's members, and deletes the project. B's
    deleted project's revocations go to B's queue only: A's bot never sees them, B's bot (not
    a member of A's guild) is refused by Discord, and A's members keep their role."""
    fake, base = discord
    fake.guilds = {"tok-b": set()}  # B's bot is in no guild of A's
    a_key = create_vendor(data_dir, "A", "101")["api_key"]
    b_key = create_vendor(data_dir, "B", "202")["api_key"]
    members = ["401", "402", "403"]
    with serving(data_dir, {"LEAF7_WEBHOOKS": "0", "LEAF7_ROLE_LEASE": "1"}) as server:
        async with aiohttp.ClientSession(base_url=server.base) as http:

            async def call(key: str, method: str, path: str, body: Any = None) -> Any:
                headers = {"Authorization": f"Bearer {key}"}
                async with http.request(method, path, json=body, headers=headers) as resp:
                    assert resp.status in (200, 201), (resp.status, await resp.text())
                    return await resp.json()

            project = {"name": "A's", "discord_guild_id": GUILD, "discord_role_id": ROLE}
            a_pid = (await call(a_key, "POST", "/api/vendor/projects", project))["project_id"]
            body = {"project_id": a_pid, "amount": 3, "key_days": 30}
            keys = await call(a_key, "POST", "/api/vendor/keys/buyer", body)
            for k, member in zip(keys, members, strict=True):
                body = {"key_id": k["key_id"], "discord_id": member}
                await call(a_key, "POST", "/api/vendor/keys/redeem", body)

            def bot(key: str, token: str) -> RoleSync:
                return RoleSync(
                    Leaf7Client(server.base, key, ""),
                    DiscordRest(token, base, backoff=0.01, max_backoff=0.05),
                    RoleSyncConfig(**FAST),
                )

            a_bot, b_bot = bot(a_key, "tok-a"), bot(b_key, "tok-b")
            try:
                await _drain_http(a_bot, b_bot)
                assert all(fake.has(m) for m in members)
                assert a_bot.applied == 3 and b_bot.applied == 0
                # B's attack.
                project = {"name": "B's", "discord_guild_id": GUILD, "discord_role_id": ROLE}
                b_pid = (await call(b_key, "POST", "/api/vendor/projects", project))["project_id"]
                imported = [
                    {"key_id": f"B-KEY-{m}", "redeemed": True, "discord_id": m} for m in members
                ]
                body = {"project_id": b_pid, "keys": imported}
                await call(b_key, "POST", "/api/vendor/keys/import", body)
                await call(b_key, "DELETE", f"/api/vendor/projects/{b_pid}")
                fake.applied.clear()
                await _drain_http(a_bot, b_bot)
                await asyncio.sleep(1.1)  # past the lease: nothing of B's comes back to A
                await _drain_http(a_bot, b_bot)
                assert all(fake.has(m) for m in members)  # A's members keep their role
                assert a_bot.applied == 3  # A's bot was handed nothing of B's
                assert not [c for c in fake.applied if c[0] == "DELETE"]
                # B's own bot was handed B's revocations, and Discord refused it A's guild.
                assert b_bot.dropped == 3 and fake.refused == 3
            finally:
                await close(a_bot, b_bot)
