"""Key lifecycle extras: notes on existing keys, timed bans (with a reason)."""

import time
from typing import Any

import pytest

from store import keyspace
from tests.support.api import Api, Clock, execute, setup_key

KEY_NOT_FOUND = {"detail": "Key not found"}
SUCCESS = {"status": "success"}
USER = "424242424242"
YEAR = 366 * 86400


def buyer_path(key_id: str) -> str:
    return f"/api/vendor/keys/buyer/{key_id}"


def active_path(key_id: str, action: str = "") -> str:
    return f"/api/vendor/keys/active/{key_id}" + (f"/{action}" if action else "")


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))


def verdict(body: dict[str, Any]) -> str:
    return str(body["code"])


async def key_hash(api: Api, pid: str, kid: str) -> dict[str, str]:
    return await api.store.redis.hgetall(keyspace.key(pid, kid))  # type: ignore[no-any-return]


async def hwid_bans(api: Api, pid: str) -> dict[str, str]:
    return await api.store.redis.hgetall(keyspace.hwid_bans(pid))  # type: ignore[no-any-return]


async def events(api: Api, pid: str) -> list[dict[str, str]]:
    return [f for _, f in await api.store.redis.xrange(keyspace.events(pid))]


async def bound_key(api: Api, hwid: str = "pc-1", **fields: Any) -> tuple[str, str]:
    """A project with a key redeemed by USER whose first loader run bound ``hwid``."""
    pid, kid = await setup_key(api, **fields)
    await api.redeem(kid, discord_id=USER)
    assert verdict(await execute(api, pid, kid, hwid=hwid)) == "KEY_VALID"
    return pid, kid


async def post(api: Api, path: str, data: bytes | None, **headers: str) -> tuple[int, Any]:
    resp = await api.client.post(path, data=data, headers={**api.auth, **headers})
    return resp.status, await resp.json()


# ---- notes -------------------------------------------------------------------------------------


async def test_buyer_note_set_and_removed(api: Api) -> None:
    pid, kid = await setup_key(api, key_days=2)
    before = await api.call("GET", buyer_path(kid))
    assert "note" not in before
    got = await api.call("PATCH", buyer_path(kid), {"note": "for bob"})
    assert got == {**before, "note": "for bob"}
    assert await api.call("GET", buyer_path(kid)) == got
    # The note is the key's: the loader sees it once the key is redeemed by its first run.
    assert (await execute(api, pid, kid, hwid="pc"))["key"]["note"] == "for bob"
    # A redeemed key's note can be changed on the buyer route too (it is the same key).
    got = await api.call("PATCH", buyer_path(kid) + "/", {"note": ""})
    assert got["redeemed"] is True and got["note"] == ""
    got = await api.call("PATCH", buyer_path(kid), {"note": None})
    assert "note" not in got
    assert await api.call("GET", buyer_path(kid)) == got
    assert "note" not in await key_hash(api, pid, kid)
    assert (await execute(api, pid, kid, hwid="pc"))["key"]["note"] is None
    kinds = [(e["kind"], e["message"], e["key_id"]) for e in await events(api, pid)]
    assert ("NOTE", "Note set by the vendor", kid) in kinds
    assert ("NOTE", "Note removed by the vendor", kid) in kinds


async def test_active_note_set_and_removed(api: Api) -> None:
    pid, kid = await bound_key(api, note="old")
    before = await api.active(kid)
    got = await api.call("PATCH", active_path(kid), {"note": "x" * 255})
    assert got == {**before, "note": "x" * 255}
    assert await api.call("GET", active_path(kid)) == got
    assert await api.active(kid) == got
    body = await execute(api, pid, kid, hwid="pc-1")
    assert verdict(body) == "KEY_VALID" and body["key"]["note"] == "x" * 255
    got = await api.call("PATCH", active_path(kid) + "/", {"note": None})
    after = {k: v for k, v in before.items() if k != "note"}
    assert {k: v for k, v in got.items() if k not in ("total_executions", "last_execution")} == {
        k: v for k, v in after.items() if k not in ("total_executions", "last_execution")
    }
    assert "note" not in await api.call("GET", active_path(kid))
    # Removing a note that is not there is fine.
    assert "note" not in await api.call("PATCH", active_path(kid), {"note": None})


async def test_note_on_missing_foreign_or_unredeemed_key(api: Api) -> None:
    pid, kid = await setup_key(api, note="mine")
    # An unredeemed key is not an active key (as GET says).
    assert await api.call("GET", active_path(kid), status=404) == KEY_NOT_FOUND
    assert await api.call("PATCH", active_path(kid), {"note": "x"}, status=404) == KEY_NOT_FOUND
    for path in (buyer_path, active_path):
        for missing in ("A" * 32, "not-a-key-id", "x" * 129):
            got = await api.call("PATCH", path(missing), {"note": "x"}, status=404)
            assert got == KEY_NOT_FOUND
    await api.redeem(kid)
    other = await api.as_other()
    for path in (buyer_path, active_path):
        got = await other.call("PATCH", path(kid), {"note": "stolen"}, status=404)
        assert got == KEY_NOT_FOUND
        got = await other.call("PATCH", path(kid), {"note": None}, status=404)
        assert got == KEY_NOT_FOUND
    assert (await key_hash(api, pid, kid))["note"] == "mine"
    # "extend" is no key: PATCH is not a method of that path.
    resp = await api.client.patch(active_path("extend"), json={"note": "x"}, headers=api.auth)
    assert resp.status == 405


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{", 400, "Malformed JSON body"),
        (b"", 400, "Malformed JSON body"),
        (b"{}", 422, "missing required field `note`"),
        (b'{"note": 5}', 422, "$.note"),
        (b'{"note": ["a"]}', 422, "$.note"),
        (b'{"note": "' + b"x" * 256 + b'"}', 422, "$.note"),
        (b'{"note": "a", "extra": 1}', 422, "unknown field `extra`"),
        (b"null", 422, "Expected `object`"),
    ],
)
async def test_note_bad_bodies(api: Api, body: bytes, status: int, detail: str) -> None:
    pid, kid = await setup_key(api, note="kept")
    await api.redeem(kid)
    for path in (buyer_path(kid), active_path(kid)):
        resp = await api.client.patch(
            path, data=body, headers={**api.auth, "Content-Type": "application/json"}
        )
        got = await resp.json()
        assert resp.status == status, got
        assert detail in got["detail"], got
    assert (await key_hash(api, pid, kid))["note"] == "kept"


# ---- timed bans --------------------------------------------------------------------------------


async def test_timed_ban_lifts_itself(api: Api, clock: Clock) -> None:
    clock.freeze()
    pid, kid = await bound_key(api, key_days=0)  # lifetime: only the ban can refuse it
    now = int(clock())
    body = {"reason": "chargeback", "duration": 3600}
    assert await api.call("POST", active_path(kid, "ban"), body) == SUCCESS
    key = await api.call("GET", active_path(kid))
    assert key["banned"] is True
    assert key["ban_reason"] == "chargeback"
    assert key["ban_expires_at"] == iso(now + 3600)
    assert await api.active(kid) == key
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_BANNED"
    assert verdict(await execute(api, pid, kid, hwid="pc-2")) == "KEY_BANNED"
    # A timed ban blocks the key only, not its HWID: another key on the same machine runs.
    assert await hwid_bans(api, pid) == {}
    [other] = await api.keys(pid)
    assert verdict(await execute(api, pid, other["key_id"], hwid="pc-1")) == "KEY_VALID"

    clock.advance(3599)
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_BANNED"
    assert (await api.call("GET", active_path(kid)))["banned"] is True
    stored = await key_hash(api, pid, kid)
    clock.advance(1)
    # The end has come: nothing was written, yet the key reads unbanned and runs again.
    assert await key_hash(api, pid, kid) == stored
    assert stored["banned"] == "1" and stored["ban_until"] == str(now + 3600)
    key = await api.call("GET", active_path(kid))
    assert (key["banned"], key["ban_reason"], key["ban_expires_at"]) == (False, None, None)
    assert await api.active(kid) == key
    got = await execute(api, pid, kid, hwid="pc-1")
    assert verdict(got) == "KEY_VALID"
    # The HWID binding held through the ban.
    assert verdict(await execute(api, pid, kid, hwid="pc-2")) == "KEY_HWID_LOCKED"


async def test_ban_reason_without_duration_is_permanent(api: Api, clock: Clock) -> None:
    pid, kid = await bound_key(api, key_days=0)
    assert await api.call("POST", active_path(kid, "ban"), {"reason": "cheating"}) == SUCCESS
    key = await api.call("GET", active_path(kid))
    assert (key["banned"], key["ban_reason"], key["ban_expires_at"]) == (True, "cheating", None)
    assert await hwid_bans(api, pid) == {"pc-1": "1"}
    clock.advance(20 * YEAR)
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_BANNED"
    assert (await api.call("GET", active_path(kid)))["banned"] is True


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        (None, {}),  # no body at all, as the contract's ban
        (b"", {"Content-Type": "application/json"}),  # Content-Length: 0
        (b"{}", {"Content-Type": "application/json"}),
        (b'{"reason": null, "duration": null}', {"Content-Type": "application/json"}),
    ],
)
async def test_ban_without_body_is_permanent(
    api: Api, clock: Clock, data: bytes | None, headers: dict[str, str]
) -> None:
    pid, kid = await bound_key(api, key_days=0)
    assert await post(api, active_path(kid, "ban"), data, **headers) == (200, SUCCESS)
    key = await api.call("GET", active_path(kid))
    assert (key["banned"], key["ban_reason"], key["ban_expires_at"]) == (True, None, None)
    assert await hwid_bans(api, pid) == {"pc-1": "1"}
    stored = await key_hash(api, pid, kid)
    assert "ban_until" not in stored and "ban_reason" not in stored
    clock.advance(20 * YEAR)
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_BANNED"
    # The same ban again changes nothing (the HWID is not counted twice).
    assert await post(api, active_path(kid, "ban"), data, **headers) == (200, SUCCESS)
    assert await hwid_bans(api, pid) == {"pc-1": "1"}
    assert await key_hash(api, pid, kid) == stored


async def test_timed_ban_made_permanent_and_back(api: Api, clock: Clock) -> None:
    clock.freeze()
    pid, kid = await bound_key(api, key_days=0)
    now = int(clock())
    await api.call("POST", active_path(kid, "ban"), {"reason": "wait", "duration": 60})
    assert await hwid_bans(api, pid) == {}
    # Re-banned for good (no body): no end, no reason, and now the HWID is blocked too.
    await api.call("POST", active_path(kid, "ban"))
    key = await api.call("GET", active_path(kid))
    assert (key["banned"], key["ban_reason"], key["ban_expires_at"]) == (True, None, None)
    assert await hwid_bans(api, pid) == {"pc-1": "1"}
    clock.advance(120)
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_BANNED"
    # Made timed again: the HWID block is lifted, the key blocked until its new end.
    await api.call("POST", active_path(kid, "ban"), {"duration": 30})
    assert await hwid_bans(api, pid) == {}
    key = await api.call("GET", active_path(kid))
    assert (key["banned"], key["ban_reason"], key["ban_expires_at"]) == (True, None, iso(now + 150))
    # A timed ban replaced by a longer one with a reason.
    await api.call("POST", active_path(kid, "ban"), {"duration": 600, "reason": "longer"})
    key = await api.call("GET", active_path(kid))
    assert (key["ban_reason"], key["ban_expires_at"]) == ("longer", iso(now + 720))
    clock.advance(599)
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_BANNED"
    clock.advance(1)
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_VALID"


async def test_ended_timed_ban_then_a_new_ban(api: Api, clock: Clock) -> None:
    clock.freeze()
    pid, kid = await bound_key(api, key_days=0)
    await api.call("POST", active_path(kid, "ban"), {"reason": "first", "duration": 10})
    clock.advance(10)
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_VALID"
    n = len([e for e in await events(api, pid) if e["kind"] == "BAN"])
    # The same ban once more: the first has ended, so this is a new ban (and a new event).
    await api.call("POST", active_path(kid, "ban"), {"reason": "first", "duration": 10})
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_BANNED"
    key = await api.call("GET", active_path(kid))
    assert (key["banned"], key["ban_reason"]) == (True, "first")
    assert key["ban_expires_at"] == iso(int(clock()) + 10)
    bans = [e for e in await events(api, pid) if e["kind"] == "BAN"]
    assert len(bans) == n + 1 and bans[-1]["message"] == "Key banned"
    # Ended again, then banned for good.
    clock.advance(10)
    await api.call("POST", active_path(kid, "ban"))
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_BANNED"
    assert await hwid_bans(api, pid) == {"pc-1": "1"}
    key = await api.call("GET", active_path(kid))
    assert (key["banned"], key["ban_reason"], key["ban_expires_at"]) == (True, None, None)


async def test_unban_clears_reason_and_end(api: Api, clock: Clock) -> None:
    clock.freeze()
    pid, kid = await bound_key(api, key_days=0)
    before = await api.active(kid)
    assert (before["ban_reason"], before["ban_expires_at"]) == (None, None)
    await api.call("POST", active_path(kid, "ban"), {"reason": "r", "duration": 3600})
    assert await api.call("POST", active_path(kid, "unban")) == SUCCESS
    assert await api.active(kid) == before
    stored = await key_hash(api, pid, kid)
    assert not {"banned", "ban_until", "ban_reason", "banned_hwid"} & set(stored)
    assert verdict(await execute(api, pid, kid, hwid="pc-1")) == "KEY_VALID"
    # Unbanning after a timed ban ended clears what it left in the hash.
    await api.call("POST", active_path(kid, "ban"), {"reason": "r", "duration": 5})
    clock.advance(5)
    assert await api.call("POST", active_path(kid, "unban")) == SUCCESS
    stored = await key_hash(api, pid, kid)
    assert not {"banned", "ban_until", "ban_reason", "banned_hwid"} & set(stored)
    # A permanent ban with a reason: unban lifts it, its reason and its HWID block.
    await api.call("POST", active_path(kid, "ban"), {"reason": "for good"})
    assert await hwid_bans(api, pid) == {"pc-1": "1"}
    await api.call("POST", active_path(kid, "unban"))
    assert await hwid_bans(api, pid) == {}
    key = await api.active(kid)
    assert (key["banned"], key["ban_reason"], key["ban_expires_at"]) == (False, None, None)


async def test_self_reset_after_timed_ban_ends(api: Api, clock: Clock) -> None:
    clock.freeze()
    pid, kid = await bound_key(api, key_days=0)
    await api.call("POST", active_path(kid, "ban"), {"duration": 60})
    reset = f"/api/vendor/users/{USER}/reset_hwid"
    body = await api.call("POST", reset, {"project_id": pid}, status=403)
    assert body == {"detail": "Key is banned"}
    clock.advance(60)
    body = await api.call("POST", reset, {"project_id": pid})
    assert body == {"status": "success", "keys_reset": 1}


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{", 400, "Malformed JSON body"),
        (b"[]", 422, "Expected `object`"),
        (b"null", 422, "Expected `object`"),
        (b'{"duration": 0}', 422, "$.duration"),
        (b'{"duration": -5}', 422, "$.duration"),
        (b'{"duration": 1.5}', 422, "$.duration"),
        (b'{"duration": "60"}', 422, "$.duration"),
        (b'{"duration": true}', 422, "$.duration"),
        (b'{"duration": 316224001}', 422, "$.duration"),  # over 10 years (of 366 days)
        (b'{"reason": 5}', 422, "$.reason"),
        (b'{"reason": "' + b"x" * 256 + b'"}', 422, "$.reason"),
        (b'{"reason": "r", "until": 5}', 422, "unknown field `until`"),
    ],
)
async def test_ban_bad_bodies(api: Api, body: bytes, status: int, detail: str) -> None:
    pid, kid = await bound_key(api)
    got = await post(api, active_path(kid, "ban"), body, **{"Content-Type": "application/json"})
    assert got[0] == status, got
    assert detail in got[1]["detail"], got
    assert (await api.call("GET", active_path(kid)))["banned"] is False
    assert await hwid_bans(api, pid) == {}


async def test_ban_limits_and_integral_floats(api: Api, clock: Clock) -> None:
    clock.freeze()
    _, kid = await bound_key(api, key_days=0)
    now = int(clock())
    body = {"reason": "x" * 255, "duration": 316224000.0}
    assert await api.call("POST", active_path(kid, "ban"), body) == SUCCESS
    key = await api.call("GET", active_path(kid))
    assert key["ban_reason"] == "x" * 255 and key["ban_expires_at"] == iso(now + 316224000)
    assert await api.call("POST", active_path(kid, "ban"), {"duration": 1}) == SUCCESS
    assert (await api.call("GET", active_path(kid)))["ban_expires_at"] == iso(now + 1)


async def test_timed_ban_foreign_or_unredeemed_key(api: Api) -> None:
    pid, kid = await bound_key(api)
    other = await api.as_other()
    body = {"reason": "r", "duration": 60}
    assert await other.call("POST", active_path(kid, "ban"), body, status=404) == KEY_NOT_FOUND
    assert "banned" not in await key_hash(api, pid, kid)
    [fresh] = await api.keys(pid)
    got = await api.call("POST", active_path(fresh["key_id"], "ban"), body, status=404)
    assert got == KEY_NOT_FOUND


async def test_openapi_documents_the_new_operations(api: Api) -> None:
    doc = await api.call("GET", "/openapi.json")
    paths = doc["paths"]
    ban = paths["/api/vendor/keys/active/{key_id}/ban"]["post"]
    assert ban["requestBody"]["required"] is False
    assert ban["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Ban"
    }
    assert set(doc["components"]["schemas"]["Ban"]["properties"]) == {"reason", "duration"}
    for path, record in (
        ("/api/vendor/keys/buyer/{key_id}", "BuyerKey"),
        ("/api/vendor/keys/active/{key_id}", "ActiveKey"),
    ):
        op = paths[path]["patch"]
        assert op["requestBody"]["required"] is True
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{record}"}
        assert {"400", "401", "404", "422"} <= set(op["responses"])
    active = doc["components"]["schemas"]["ActiveKey"]
    assert {"ban_reason", "ban_expires_at"} <= set(active["required"])
    # Every other body stays required.
    for item in paths.values():
        for method, op in item.items():
            if "requestBody" in op and op is not ban:
                assert op["requestBody"]["required"] is True, method
