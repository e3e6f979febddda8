"""The loader execution check: every verdict, precedence, HWID sources, hosted scripts."""

import asyncio
import json
import re
from typing import Any

import pytest

from store import keyspace
from tests.support.api import EXECUTE, Api, Clock, execute, setup_key, store_of


def verdict(data: dict[str, Any]) -> str:
    assert set(data) >= {"valid", "code", "message"}
    assert data["valid"] is (data["code"] == "KEY_VALID")
    return str(data["code"])


async def test_valid_first_run_redeems_binds_and_counts(api: Api) -> None:
    pid, kid = await setup_key(api, key_days=1, note="vip")
    data = await execute(api, pid, kid, hwid="pc-1")
    assert verdict(data) == "KEY_VALID"
    assert data["message"] == "Key is valid"
    assert data["script"] == ""
    key = data["key"]
    assert set(key) == {"expires_at", "seconds_left", "total_executions", "discord_id", "note"}
    assert key["total_executions"] == 1
    assert key["discord_id"] is None
    assert key["note"] == "vip"
    assert 86390 <= key["seconds_left"] <= 86400
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", key["expires_at"])
    active = await api.active(kid)
    assert active["hwid"] == "pc-1"
    assert active["total_executions"] == 1
    assert active["discord_id"] is None
    assert active["redeemed_at"] is not None
    assert active["last_execution"] is not None
    buyer = await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")
    assert buyer[0]["redeemed"] is True
    data = await execute(api, pid, kid, hwid="pc-1")
    assert data["key"]["total_executions"] == 2


async def test_lifetime_key(api: Api) -> None:
    pid, kid = await setup_key(api, key_days=0)
    data = await execute(api, pid, kid)
    assert data["key"]["expires_at"] is None
    assert data["key"]["seconds_left"] is None


async def test_hwid_locked(api: Api) -> None:
    pid, kid = await setup_key(api)
    assert verdict(await execute(api, pid, kid, hwid="a")) == "KEY_VALID"
    data = await execute(api, pid, kid, hwid="b")
    assert verdict(data) == "KEY_HWID_LOCKED"
    assert "script" not in data and "key" not in data
    await api.call("POST", f"/api/vendor/keys/active/{kid}/reset_hwid")
    assert verdict(await execute(api, pid, kid, hwid="b")) == "KEY_VALID"
    assert (await api.active(kid))["hwid"] == "b"


async def test_incorrect_key(api: Api) -> None:
    pid, _ = await setup_key(api)
    for bad in ["", "nope", "x" * 128, "a{b}c:*"]:
        assert verdict(await execute(api, pid, bad)) == "KEY_INCORRECT"


async def test_key_of_another_project_is_incorrect(api: Api) -> None:
    _, kid = await setup_key(api)
    other = await api.project(name="Other")
    assert verdict(await execute(api, other["project_id"], kid)) == "KEY_INCORRECT"


async def test_project_not_found_and_inactive(api: Api) -> None:
    pid, kid = await setup_key(api)
    missing = "00000000-0000-4000-8000-000000000000"
    assert verdict(await execute(api, missing, kid)) == "PROJECT_NOT_FOUND"
    assert verdict(await execute(api, "not-a-uuid", kid)) == "PROJECT_NOT_FOUND"
    await api.call("PATCH", f"/api/vendor/projects/{pid}", {"is_active": False})
    data = await execute(api, pid, kid)
    assert verdict(data) == "PROJECT_INACTIVE"
    assert data["message"] == "Project is inactive"


async def test_hwid_missing(api: Api) -> None:
    pid, kid = await setup_key(api)
    data = await execute(api, pid, kid, hwid=None)
    assert verdict(data) == "HWID_MISSING"
    assert verdict(await execute(api, pid, kid, hwid="")) == "HWID_MISSING"
    # An unknown project does not outrank a missing HWID (it is checked first, without Redis).
    missing = "00000000-0000-4000-8000-000000000000"
    assert verdict(await execute(api, missing, kid, hwid=None)) == "HWID_MISSING"


@pytest.mark.parametrize(
    "header", ["Syn-Fingerprint", "Krnl-Hwid", "Exploit-Guid", "Sw-Fingerprint", "fingerprint"]
)
async def test_hwid_from_executor_headers(api: Api, header: str) -> None:
    pid, kid = await setup_key(api)
    data = await execute(api, pid, kid, hwid=None, headers={header: "fp-123"})
    assert verdict(data) == "KEY_VALID"
    assert (await api.active(kid))["hwid"] == "fp-123"


async def test_header_hwid_wins_over_body(api: Api) -> None:
    # The executor's header is the HWID; the body (the script's to write) only without one.
    pid, kid = await setup_key(api)
    await execute(api, pid, kid, hwid="body", headers={"Syn-Fingerprint": "header"})
    assert (await api.active(kid))["hwid"] == "header"


async def test_banned_key_and_hwid(api: Api) -> None:
    pid, kid = await setup_key(api)
    [other] = await api.keys(pid)
    assert verdict(await execute(api, pid, kid, hwid="cheater")) == "KEY_VALID"
    await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    # The very next execution fails; the key's own verdict is KEY_BANNED.
    assert verdict(await execute(api, pid, kid, hwid="cheater")) == "KEY_BANNED"
    assert verdict(await execute(api, pid, kid, hwid="fresh")) == "KEY_BANNED"
    # Another key of the same project from the banned HWID: HWID_BANNED, nothing redeemed.
    data = await execute(api, pid, other["key_id"], hwid="cheater")
    assert verdict(data) == "HWID_BANNED"
    listed = await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")
    assert [k["redeemed"] for k in listed if k["key_id"] == other["key_id"]] == [False]
    # Other projects are unaffected.
    pid2, kid2 = await setup_key(api)
    assert verdict(await execute(api, pid2, kid2, hwid="cheater")) == "KEY_VALID"
    await api.call("POST", f"/api/vendor/keys/active/{kid}/unban")
    assert verdict(await execute(api, pid, kid, hwid="cheater")) == "KEY_VALID"
    assert verdict(await execute(api, pid, other["key_id"], hwid="other-pc")) == "KEY_VALID"


async def test_expired_key_never_validates(api: Api, clock: Clock) -> None:
    pid, kid = await setup_key(api, key_days=0, key_minutes=1)
    assert verdict(await execute(api, pid, kid)) == "KEY_VALID"
    clock.advance(59)
    assert verdict(await execute(api, pid, kid)) == "KEY_VALID"
    clock.advance(1)
    assert verdict(await execute(api, pid, kid)) == "KEY_EXPIRED"
    clock.advance(3600 * 24)
    assert verdict(await execute(api, pid, kid)) == "KEY_EXPIRED"
    assert verdict(await execute(api, pid, kid, hwid="other")) == "KEY_EXPIRED"
    # A vendor HWID reset does not revive it.
    await api.call("POST", f"/api/vendor/keys/active/{kid}/reset_hwid")
    assert verdict(await execute(api, pid, kid)) == "KEY_EXPIRED"


async def test_unredeemed_key_clock_starts_at_first_run(api: Api, clock: Clock) -> None:
    clock.freeze()  # an exact seconds_left: no second may tick between the check and the answer
    pid, kid = await setup_key(api, key_days=0, key_minutes=1)
    clock.advance(3600)  # generated long ago, never used: not expired
    data = await execute(api, pid, kid)
    assert verdict(data) == "KEY_VALID"
    assert data["key"]["seconds_left"] == 60


async def test_precedence(api: Api, clock: Clock) -> None:
    pid, kid = await setup_key(api, key_days=0, key_minutes=1)
    assert verdict(await execute(api, pid, kid, hwid="h1")) == "KEY_VALID"
    clock.advance(120)
    # expired + wrong HWID -> KEY_EXPIRED (expiry is checked before the HWID lock)
    assert verdict(await execute(api, pid, kid, hwid="h2")) == "KEY_EXPIRED"
    await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    # banned + expired + HWID banned -> KEY_BANNED
    assert verdict(await execute(api, pid, kid, hwid="h1")) == "KEY_BANNED"
    await api.call("PATCH", f"/api/vendor/projects/{pid}", {"is_active": False})
    # inactive project outranks every key verdict
    assert verdict(await execute(api, pid, kid, hwid="h1")) == "PROJECT_INACTIVE"
    assert verdict(await execute(api, pid, "nope", hwid="h1")) == "PROJECT_INACTIVE"


async def test_hwid_ban_outranks_expiry_and_lock(api: Api, clock: Clock) -> None:
    pid, kid = await setup_key(api, key_days=0, key_minutes=1)
    pid_keys = await api.keys(pid, key_days=0, key_minutes=1)
    victim = pid_keys[0]["key_id"]
    await execute(api, pid, kid, hwid="bad")
    await execute(api, pid, victim, hwid="good")
    await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    clock.advance(120)
    # victim is expired and locked to "good"; from the banned HWID it reports HWID_BANNED
    assert verdict(await execute(api, pid, victim, hwid="bad")) == "HWID_BANNED"


async def test_ffa_project(api: Api) -> None:
    project = await api.project(ffa_active=True)
    pid = project["project_id"]
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": "print(L7_UserNote)"})
    data = await execute(api, pid, "", hwid="anyone")
    assert verdict(data) == "KEY_VALID"
    assert data["script"] == 'local L7_UserNote = "FFA"\nprint(L7_UserNote)'
    assert data["key"]["note"] == "FFA"
    data = await execute(api, pid, "", hwid="anyone")
    assert data["key"]["total_executions"] == 2


async def test_ffa_still_blocks_banned_hwid(api: Api) -> None:
    pid, kid = await setup_key(api)
    await execute(api, pid, kid, hwid="bad")
    await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    await api.call("PATCH", f"/api/vendor/projects/{pid}", {"ffa_active": True})
    assert verdict(await execute(api, pid, "", hwid="bad")) == "HWID_BANNED"
    assert verdict(await execute(api, pid, "", hwid="ok")) == "KEY_VALID"


async def test_hosted_source_and_macros(api: Api) -> None:
    pid, kid = await setup_key(api, key_days=0, note="gold")
    src = "print(L7_ScriptName, L7_ScriptVersion, L7_TotalExecutions, L7_SecondsLeft)\n"
    project = await api.call(
        "PUT", f"/api/vendor/projects/{pid}/source", {"source": src, "version": "1.2.0"}
    )
    assert project["version"] == "1.2.0"
    data = await execute(api, pid, kid)
    assert data["script"] == (
        'local L7_ScriptName = "Script Hub"\n'
        'local L7_ScriptVersion = "1.2.0"\n'
        "local L7_TotalExecutions = 1\n"
        'local L7_SecondsLeft = "Lifetime"\n' + src
    )
    # Without a version the patch number is bumped.
    project = await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": "x()"})
    assert project["version"] == "1.2.1"
    data = await execute(api, pid, kid)
    assert data["script"] == "x()"  # no macro used -> none defined


async def test_invalid_check_never_returns_source(api: Api) -> None:
    pid, kid = await setup_key(api)
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": "SECRET()"})
    await execute(api, pid, kid, hwid="a")
    for data in [
        await execute(api, pid, kid, hwid="b"),
        await execute(api, pid, "wrong", hwid="a"),
        await execute(api, pid, kid, hwid=None),
    ]:
        assert not data["valid"]
        assert "SECRET" not in str(data)
        assert set(data) == {"valid", "code", "message"}


async def test_source_routes_errors(api: Api) -> None:
    pid, _ = await setup_key(api)
    url = f"/api/vendor/projects/{pid}/source"
    await api.call("PUT", url, {"source": 5}, status=422)
    await api.call("PUT", url, {"source": "x", "version": "bad version"}, status=422)
    await api.call("PUT", url, {}, status=422)
    other = await api.as_other()
    body = await other.call("PUT", url, {"source": "evil()"}, status=404)
    assert body == {"detail": "Project not found"}
    project = await api.call("GET", f"/api/vendor/projects/{pid}")
    assert project["version"] == "0.0.0"


async def test_malformed_execute_requests(api: Api) -> None:
    pid, kid = await setup_key(api)
    for raw in [b"{", b"[]", b'{"script_key": "x"}', b'{"project_id": 5, "hwid": "a"}']:
        resp = await api.client.post(EXECUTE, data=raw)
        assert resp.status == 400, raw
        assert "detail" in await resp.json()
    resp = await api.client.post(
        EXECUTE, json={"project_id": pid, "script_key": kid, "hwid": "h" * 513}
    )
    assert resp.status == 400


async def test_loader_lua_route(api: Api) -> None:
    pid, _ = await setup_key(api)
    resp = await api.client.get(f"/api/loader/{pid}/loader.lua")
    assert resp.status == 200
    text = await resp.text()
    assert f'local PROJECT_ID = "{pid}"' in text
    assert "/api/loader/execute" in text
    resp = await api.client.get("/api/loader/00000000-0000-4000-8000-000000000000/loader.lua")
    assert resp.status == 404
    assert await resp.json() == {"detail": "Project not found"}


async def test_first_run_ref_expires_with_key(api: Api) -> None:
    pid, kid = await setup_key(api, key_days=1)
    await execute(api, pid, kid)
    # The ref's expiry rides in the next auto-pipeline batches (off the response path).
    ref = keyspace.key_ref(api.vendor_id, kid)
    for _ in range(200):
        ttl = await api.store.redis.pttl(ref)
        if ttl != -1:
            break
        await asyncio.sleep(0.01)
    assert 0 < ttl <= (86400 + 3600) * 1000


# ---- races on the real server ---------------------------------------------------------------


async def test_race_first_runs_bind_one_hwid(real_api: Api) -> None:
    api = real_api
    pid, kid = await setup_key(api)
    results = await asyncio.gather(*(execute(api, pid, kid, hwid=f"pc-{i}") for i in range(100)))
    codes = [r["code"] for r in results]
    assert codes.count("KEY_VALID") == 1
    assert codes.count("KEY_HWID_LOCKED") == 99
    winner = next(i for i, r in enumerate(results) if r["valid"])
    active = await api.active(kid)
    assert active["hwid"] == f"pc-{winner}"
    assert active["total_executions"] == 1


async def test_race_counts_every_valid_execution(real_api: Api) -> None:
    api = real_api
    pid, kid = await setup_key(api)
    results = await asyncio.gather(*(execute(api, pid, kid, hwid="same") for _ in range(200)))
    assert all(r["code"] == "KEY_VALID" for r in results)
    assert sorted(r["key"]["total_executions"] for r in results) == list(range(1, 201))
    assert (await api.active(kid))["total_executions"] == 200


async def test_ban_during_executions(real_api: Api) -> None:
    api = real_api
    pid, kid = await setup_key(api)
    await execute(api, pid, kid, hwid="x")

    async def ban() -> None:
        await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")

    await asyncio.gather(*(execute(api, pid, kid, hwid="x") for _ in range(50)), ban())
    data = await execute(api, pid, kid, hwid="x")
    assert data["code"] == "KEY_BANNED"


async def test_two_instances_see_each_others_changes(
    aiohttp_client: Any, redis_client: Any, clock: Clock, settings: Any
) -> None:
    """Each instance caches what loaders receive per revision; a change made through one is
    served by the other on its very next check."""
    from service.app import create_app

    a = await aiohttp_client(create_app(settings, redis=redis_client, clock=clock))
    b = await aiohttp_client(create_app(settings, redis=redis_client, clock=clock))
    api_a = await Api(a, store_of(a)).login()
    api_b = Api(b, store_of(b))
    api_b.api_key, api_b.vendor_id = api_a.api_key, api_a.vendor_id
    pid, kid = await setup_key(api_a)
    src = "print(L7_ScriptName)"
    await api_a.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": src})
    assert (await execute(api_a, pid, kid))["script"].endswith(src)
    assert (await execute(api_b, pid, kid))["script"].startswith('local L7_ScriptName = "Script')
    # New source through B: A serves it at once, although A had the old one cached.
    await api_b.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": "v2()"})
    assert (await execute(api_a, pid, kid))["script"] == "v2()"
    # A renamed project through A: B's macro changes at once.
    await api_b.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": src})
    assert "Script Hub" in (await execute(api_b, pid, kid))["script"]
    await api_a.call("PATCH", f"/api/vendor/projects/{pid}", {"name": "Renamed"})
    assert (await execute(api_b, pid, kid))["script"] == f'local L7_ScriptName = "Renamed"\n{src}'
    # A ban through A is seen by B's very next check.
    await api_a.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    assert (await execute(api_b, pid, kid))["code"] == "KEY_BANNED"
    total = (await api_a.active(kid))["total_executions"]
    assert total == 5


async def test_body_arriving_after_the_headers(api: Api) -> None:
    """A body that is not complete when the headers are parsed (a slow client) is awaited;
    one that came with them is taken at once. Both give the same verdict."""
    pid, key_id = await setup_key(api)
    body = f'{{"project_id":"{pid}","script_key":"{key_id}","hwid":"slow-hw"}}'.encode()
    server = api.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        head = (
            f"POST {EXECUTE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        writer.write(head + body[:10])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(body[10:])
        await writer.drain()
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        length = 0
        while (line := await reader.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        data = json.loads(await reader.readexactly(length))
    finally:
        writer.close()
        await writer.wait_closed()
    assert verdict(data) == "KEY_VALID"
    again = await execute(api, pid, key_id, hwid="slow-hw")
    assert verdict(again) == "KEY_VALID"
    assert again["key"]["total_executions"] == 2
