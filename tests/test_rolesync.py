"""Discord role sync against a real Valkey and a fake Discord REST server in the test process:
the role follows the keys (redeem, ban, unban, expiry, project deactivation and role change,
a first loader run, the project's deletion), Discord's rate limits and errors, a bot killed
between reading and acknowledging, and two bots sharing the stream."""

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from service.rolesync import DiscordRest, RoleSync, RoleSyncConfig
from store import keyspace
from tests.support.api import Api, Clock, execute

GUILD = "1100000000000000001"
ROLE = "1200000000000000002"
ROLE2 = "1200000000000000003"


class FakeDiscord:
    """Discord's two role routes: records the calls it applied, keeps each member's roles,
    answers 429 every ``every_429``-th request, 404 Unknown Member for ``absent`` users,
    ``fail`` 502s first, and holds requests while ``gate`` is closed."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, str, str, str]] = []  # method, guild, user, role
        self.roles: dict[tuple[str, str], set[str]] = {}
        self.requests = 0
        self.limited = 0
        self.every_429 = 0
        self.absent: set[str] = set()
        self.fail = 0
        self.forbidden = False
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
        self.auth.add(request.headers.get("Authorization", ""))
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
        if self.forbidden:
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


FAST = RoleSyncConfig(poll=0.02, sweep=0.0, claim_idle=0.3, batch=50)


def sync_for(api: Api, base: str, pid: str, **config: Any) -> RoleSync:
    cfg = RoleSyncConfig(**{**FAST.__dict__, **config})
    rest = DiscordRest("tok", base, backoff=0.01, max_backoff=0.05)
    return RoleSync(api.store, rest, pid, cfg)


async def drain(*syncs: RoleSync) -> None:
    """Steps until the stream has nothing left for anyone."""
    store = syncs[0].store
    pid = syncs[0].project_id
    for s in syncs:
        await s.store.roles.ensure_group(pid)
    for _ in range(200):
        done = await asyncio.gather(*(s.step() for s in syncs))
        if (
            not sum(done)
            and not await store.roles.pending(pid)
            and not await store.roles.revokes_pending(GUILD)
        ):
            return
    raise AssertionError("the role stream never drained")


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


async def test_role_follows_the_keys(
    real_api: Api, clock: Clock, discord: tuple[FakeDiscord, str]
) -> None:
    """On one Valkey and on a Valkey Cluster (every role script stays in the project's slot)."""
    api = real_api
    fake, base = discord
    fake.every_429 = 3  # every third request is refused with 429 and retried
    pid = await role_project(api)
    [k1, k2] = await api.keys(pid, amount=2, key_days=0, key_minutes=1)
    sync = sync_for(api, base, pid)
    try:
        await api.redeem(k1["key_id"], "42")
        await drain(sync)
        assert fake.has("42") and fake.auth == {"Bot tok"}
        await api.call("POST", f"/api/vendor/keys/active/{k1['key_id']}/ban")
        await drain(sync)
        assert not fake.has("42")
        await api.call("POST", f"/api/vendor/keys/active/{k1['key_id']}/unban")
        await drain(sync)
        assert fake.has("42")
        # Replaying an entry changes nothing: the state is read at apply time.
        before = list(fake.applied)
        await drain(sync)
        assert fake.applied == before
        assert fake.limited >= 1 and sync.rest.rate_limited == fake.limited
        # Expiry: found by the sweep (the store's clock moves past the key's end), the role
        # goes within the sweep interval of the running consumer.
        clock.advance(61)
        runner = sync_for(api, base, pid, sweep=0.2, poll=0.05)
        running = asyncio.ensure_future(runner.run())
        try:
            t0 = time.monotonic()
            await wait_for(lambda: not fake.has("42"), within=3)
            assert time.monotonic() - t0 < 1.5
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await runner.rest.close()
        # Everything acknowledged and deleted; nobody left to re-check.
        redis = api.store.redis
        assert await redis.xlen(keyspace.role_changes(pid)) == 0
        assert await redis.zcard(keyspace.role_checks(pid)) == 0
        # A second key: redeem grants; extend keeps it past the first expiry.
        await api.redeem(k2["key_id"], "43")
        await drain(sync)
        assert fake.has("43")
        body = {"project_id": pid, "key_days": 1}
        await api.call("POST", "/api/vendor/keys/active/extend", body)
        clock.advance(61)
        await drain(sync)
        assert fake.has("43")  # re-checked at its old end: still valid
        clock.advance(86400)
        await drain(sync)
        assert not fake.has("43")
    finally:
        await sync.rest.close()


async def test_timed_ban_gives_the_role_back_when_it_ends(
    valkey_api: Api, clock: Clock, discord: tuple[FakeDiscord, str]
) -> None:
    api = valkey_api
    fake, base = discord
    pid = await role_project(api)
    [k] = await api.keys(pid, key_days=30)
    sync = sync_for(api, base, pid)
    try:
        await api.redeem(k["key_id"], "77")
        await drain(sync)
        assert fake.has("77")
        path = f"/api/vendor/keys/active/{k['key_id']}/ban"
        resp = await api.client.post(path, json={"duration": 60}, headers=api.auth)
        assert resp.status == 200, await resp.text()
        await drain(sync)
        assert not fake.has("77")
        clock.advance(61)
        await drain(sync)
        assert fake.has("77")
    finally:
        await sync.rest.close()


async def test_project_switches_and_role_changes(
    valkey_api: Api, clock: Clock, discord: tuple[FakeDiscord, str]
) -> None:
    api = valkey_api
    fake, base = discord
    pid = await role_project(api)
    users = ["501", "502", "503"]
    keys = await redeemed_by(api, pid, users)
    sync = sync_for(api, base, pid)
    path = f"/api/vendor/projects/{pid}"
    try:
        await drain(sync)
        assert all(fake.has(u) for u in users)
        await api.call("PATCH", path, {"is_active": False})
        await drain(sync)
        assert not any(fake.has(u) for u in users)
        await api.call("PATCH", path, {"is_active": True})
        await drain(sync)
        assert all(fake.has(u) for u in users)
        # Another role: the old one goes from everyone, the new one comes.
        await api.call("PATCH", path, {"discord_role_id": ROLE2})
        await drain(sync)
        assert all(fake.has(u, ROLE2) and not fake.has(u) for u in users)
        # No role any more: removed, and nothing is written for later changes.
        await api.call("PATCH", path, {"discord_role_id": None})
        await drain(sync)
        assert not any(fake.has(u, ROLE2) for u in users)
        n = len(fake.applied)
        await api.call("POST", f"/api/vendor/keys/active/{keys[0]['key_id']}/ban")
        assert await api.store.redis.xlen(keyspace.role_changes(pid)) == 0
        await drain(sync)
        assert len(fake.applied) == n
    finally:
        await sync.rest.close()


async def test_nothing_is_written_without_a_role(valkey_api: Api) -> None:
    api = valkey_api
    project = await api.project()
    pid = project["project_id"]
    [k] = await api.keys(pid, key_days=1)
    await api.redeem(k["key_id"], "42")
    await api.call("POST", f"/api/vendor/keys/active/{k['key_id']}/ban")
    await api.call("PATCH", f"/api/vendor/projects/{pid}", {"is_active": False})
    redis = api.store.redis
    assert not await redis.exists(keyspace.role_changes(pid), keyspace.role_checks(pid))


async def test_first_loader_run_of_a_key_that_names_its_user(
    valkey_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = valkey_api
    fake, base = discord
    pid = await role_project(api)
    [k] = await api.keys(pid, key_days=1)
    kid = k["key_id"]
    # A buyer key that already names its Discord user (as an import may write it).
    redis = api.store.redis
    await redis.hset(keyspace.key(pid, kid), "discord_id", "88")
    await redis.sadd(keyspace.discord_index(pid, "88"), kid)
    await redis.hset(keyspace.key_discords(pid), kid, "88")
    sync = sync_for(api, base, pid)
    try:
        assert (await execute(api, pid, kid))["code"] == "KEY_VALID"
        assert await redis.xlen(keyspace.role_changes(pid)) == 1
        await execute(api, pid, kid)  # an ordinary check writes nothing for role sync
        assert await redis.xlen(keyspace.role_changes(pid)) == 1
        await drain(sync)
        assert fake.has("88")
    finally:
        await sync.rest.close()


async def test_member_who_left_and_refusals(
    valkey_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = valkey_api
    fake, base = discord
    pid = await role_project(api)
    [k1, k2] = await api.keys(pid, amount=2, key_days=1)
    fake.absent.add("61")
    sync = sync_for(api, base, pid)
    try:
        await api.redeem(k1["key_id"], "61")
        fake.fail = 2  # two 502s, retried with backoff
        await drain(sync)
        assert sync.dropped == 0 and sync.applied == 1
        assert await api.store.roles.pending(pid) == 0
        # A missing permission cannot be retried into success: logged and dropped.
        fake.forbidden = True
        await api.redeem(k2["key_id"], "62")
        await drain(sync)
        assert sync.dropped == 1 and not fake.has("62")
        # Saving the role again re-syncs everyone once it is fixed.
        fake.forbidden = False
        path = f"/api/vendor/projects/{pid}"
        await api.call("PATCH", path, {"discord_role_id": ROLE})
        await drain(sync)
        assert fake.has("62")
    finally:
        await sync.rest.close()


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
    valkey_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = valkey_api
    fake, base = discord
    pid = await role_project(api)
    users = ["901", "902", "903"]
    keys = await redeemed_by(api, pid, users)
    first = sync_for(api, base, pid)
    await api.store.roles.ensure_group(pid)
    fake.gate.clear()  # Discord holds the first call
    task = asyncio.ensure_future(first.run())
    await asyncio.wait_for(fake.arrived.wait(), 5)
    task.cancel()  # killed mid-stream: entries read, none acknowledged
    await asyncio.gather(task, return_exceptions=True)
    await first.rest.close()
    assert await api.store.roles.pending(pid) == 3
    fake.gate.set()
    second = sync_for(api, base, pid)  # another process: a new consumer name
    try:
        await asyncio.sleep(0.35)  # past claim_idle
        await drain(second)
        assert all(fake.has(u) for u in users)
        assert await api.store.roles.pending(pid) == 0
        assert second.applied == 3
        # Meanwhile the state moved on: still right after the restart.
        await api.call("POST", f"/api/vendor/keys/active/{keys[0]['key_id']}/ban")
        await drain(second)
        assert not fake.has(users[0]) and fake.has(users[1])
    finally:
        await second.rest.close()


async def test_two_consumers_never_double_apply(
    valkey_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = valkey_api
    fake, base = discord
    fake.every_429 = 5
    pid = await role_project(api)
    users = [str(700 + i) for i in range(30)]
    await redeemed_by(api, pid, users)
    a = sync_for(api, base, pid, batch=4)
    b = sync_for(api, base, pid, batch=4)
    try:
        await drain(a, b)
        assert all(fake.has(u) for u in users)
        puts = Counter(user for method, _, user, _ in fake.applied if method == "PUT")
        assert puts == Counter(users)  # each entry applied once, by one of the two
        assert a.applied + b.applied == 30 and a.applied > 0 and b.applied > 0
    finally:
        await a.rest.close()
        await b.rest.close()


async def test_deleting_the_project_removes_the_role(
    real_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    """On one Valkey and on a Valkey Cluster: the guild's revoke stream is in its own slot."""
    api = real_api
    fake, base = discord
    pid = await role_project(api)
    users = ["301", "302", "303"]
    await redeemed_by(api, pid, [*users, "303"])  # 303 holds two keys
    sync = sync_for(api, base, pid)
    try:
        await drain(sync)
        assert all(fake.has(u) for u in users)
        fake.applied.clear()
        await api.call("DELETE", f"/api/vendor/projects/{pid}")
        redis = api.store.redis
        # Queued before the bot ran: each user once, with what to remove.
        entries = await redis.xrange(keyspace.role_revokes(GUILD))
        assert sorted(f["discord_id"] for _, f in entries) == users
        assert {(f["guild"], f["role"], f["project_id"]) for _, f in entries} == {
            (GUILD, ROLE, pid)
        }
        assert not await redis.exists(keyspace.role_changes(pid), keyspace.key_discords(pid))
        await drain(sync)
        assert sorted(fake.applied) == sorted(("DELETE", GUILD, u, ROLE) for u in users)
        assert not any(fake.has(u) for u in users)
        assert await redis.xlen(keyspace.role_revokes(GUILD)) == 0
        # Replays change nothing: the entries are acknowledged and deleted.
        await drain(sync)
        assert len(fake.applied) == 3
    finally:
        await sync.rest.close()


async def test_delete_then_bot_killed_and_restarted_still_removes_the_role(
    valkey_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = valkey_api
    fake, base = discord
    pid = await role_project(api)
    users = ["311", "312", "313"]
    fake.absent.add("313")  # left the server: done, not an error
    await redeemed_by(api, pid, users)
    first = sync_for(api, base, pid)
    await drain(first)
    await first.rest.close()
    await api.call("DELETE", f"/api/vendor/projects/{pid}")
    # A bot of the deleted project, started after the delete, finds the guild through the
    # store; killed while Discord holds its first call: entries read, none acknowledged.
    second = sync_for(api, base, pid)
    fake.gate.clear()
    fake.arrived.clear()
    task = asyncio.ensure_future(second.run())
    try:
        await asyncio.wait_for(fake.arrived.wait(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await second.rest.close()
    assert await api.store.roles.revokes_pending(GUILD) == 3
    assert fake.has("311") and fake.has("312")
    fake.gate.set()
    third = sync_for(api, base, pid)  # restarted: a new consumer
    try:
        await asyncio.sleep(0.35)  # past claim_idle
        await drain(third)
        assert not fake.has("311") and not fake.has("312")
        assert third.applied == 3 and third.dropped == 0
        assert await api.store.roles.revokes_pending(GUILD) == 0
        assert await api.store.redis.xlen(keyspace.role_revokes(GUILD)) == 0
    finally:
        await third.rest.close()


async def test_a_resumed_delete_queues_the_users_still_there(
    valkey_api: Api, discord: tuple[FakeDiscord, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete that died while queueing (after the tombstone) is resumed by deleting again:
    every user is queued, none lost, before any key goes."""
    api = valkey_api
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
    assert await redis.hlen(keyspace.key_discords(pid)) == 3  # nothing deleted yet
    assert await redis.xlen(keyspace.role_revokes(GUILD)) == 0
    monkeypatch.undo()  # restarted
    await api.call("DELETE", f"/api/vendor/projects/{pid}")  # resumed
    entries = await redis.xrange(keyspace.role_revokes(GUILD))
    assert sorted(f["discord_id"] for _, f in entries) == users
    sync = sync_for(api, base, pid)
    try:
        await drain(sync)
        assert sorted(fake.applied) == sorted(("DELETE", GUILD, u, ROLE) for u in users)
    finally:
        await sync.rest.close()


async def test_another_project_with_the_same_role_keeps_it(
    valkey_api: Api, discord: tuple[FakeDiscord, str]
) -> None:
    api = valkey_api
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
    one = sync_for(api, base, pid)
    two = sync_for(api, base, other)
    try:
        await drain(one)
        await drain(two)
        assert fake.has("331") and fake.has("332") and fake.has("333")
        await api.call("POST", f"/api/vendor/keys/active/{b2['key_id']}/ban")
        fake.applied.clear()
        await api.call("DELETE", f"/api/vendor/projects/{pid}")
        await drain(two)  # the other project's bot reads the guild's revoke stream
        assert fake.has("331") and not fake.has("332") and not fake.has("333")
        # (333's ban reaches Discord through `other`'s own stream as well.)
        assert sorted(set(fake.applied)) == [
            ("DELETE", GUILD, "332", ROLE),
            ("DELETE", GUILD, "333", ROLE),
        ]
        assert await api.store.redis.xlen(keyspace.role_revokes(GUILD)) == 0
    finally:
        await one.rest.close()
        await two.rest.close()


async def test_a_big_project_is_queued_in_bounded_writes(
    valkey_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = valkey_api
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
    entries = await redis.xrange(keyspace.role_revokes(GUILD))
    assert {f["discord_id"] for _, f in entries} == {str(10**17 + i) for i in range(n)}
    assert not await redis.exists(keyspace.key_discords(pid))
