"""Buyer keys, redemption and active keys."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from store import keyspace
from tests.support.api import Api, Clock, data_size, keys_matching

BUYER_FIELDS = {
    "key_id",
    "project_id",
    "created_at",
    "redeemed",
    "discord_id",
    "key_days",
    "key_hours",
    "key_minutes",
    "type",  # "paid", or "free" for a get-key page's key (tests/test_free_keys.py)
}
ACTIVE_FIELDS = {
    "key_id",
    "project_id",
    "discord_id",
    "hwid",
    "hwid_resets",
    "total_executions",
    "last_execution",
    "last_reset",
    "redeemed_at",
    "expires_at",
    "banned",
    "ban_reason",
    "ban_expires_at",
    "type",
}
KEY_ID_RE = re.compile(r"^[A-Za-z0-9]{32,}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
KEY_NOT_FOUND = {"detail": "Key not found"}
PROJECT_NOT_FOUND = {"detail": "Project not found"}
SUCCESS = {"status": "success"}
NO_DISCORD = {"detail": "Discord account must be linked before you can generate buyer keys."}


def ts(value: str) -> datetime:
    assert TIMESTAMP_RE.fullmatch(value), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")


def _utc(seconds: float) -> datetime:
    """Epoch seconds -> naive UTC datetime, truncated to the second like the API."""
    return datetime.fromtimestamp(int(seconds), UTC).replace(tzinfo=None)


def active_path(key_id: str, action: str) -> str:
    return f"/api/vendor/keys/active/{key_id}/{action}"


async def hwid_bans(api: Api, project_id: str) -> dict[str, str]:
    return await api.store.redis.hgetall(keyspace.hwid_bans(project_id))  # type: ignore[no-any-return]


# ---- generation ----------------------------------------------------------------------------


async def test_generate_default_one_key(api: Api, clock: Clock) -> None:
    project = await api.project()
    before = _utc(clock())
    created = await api.call(
        "POST", "/api/vendor/keys/buyer", {"project_id": project["project_id"]}
    )
    after = _utc(clock())
    assert isinstance(created, list)
    assert len(created) == 1
    [key] = created
    assert set(key) == BUYER_FIELDS
    assert KEY_ID_RE.fullmatch(key["key_id"])
    assert before <= ts(key["created_at"]) <= after
    assert {k: v for k, v in key.items() if k not in ("key_id", "created_at")} == {
        "project_id": project["project_id"],
        "redeemed": False,
        "discord_id": None,
        "key_days": 30,
        "key_hours": 0,
        "key_minutes": 0,
        "type": "paid",
    }


async def test_generate_ten_with_durations_and_note(api: Api) -> None:
    project = await api.project()
    pid = project["project_id"]
    created = await api.keys(pid, amount=10, key_days=1, key_hours=2, key_minutes=3, note="batch")
    assert len(created) == 10
    ids = [k["key_id"] for k in created]
    assert len(set(ids)) == 10
    for key in created:
        assert set(key) == BUYER_FIELDS | {"note"}
        assert KEY_ID_RE.fullmatch(key["key_id"])
        assert key["project_id"] == pid
        assert (key["key_days"], key["key_hours"], key["key_minutes"]) == (1, 2, 3)
        assert key["note"] == "batch"
        assert key["redeemed"] is False
        assert key["discord_id"] is None
    listed = await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")
    assert sorted(listed, key=lambda k: k["key_id"]) == sorted(created, key=lambda k: k["key_id"])


async def test_generate_note_absent_unless_set(api: Api) -> None:
    project = await api.project()
    pid = project["project_id"]
    [plain] = await api.keys(pid)
    [null_note] = await api.keys(pid, note=None)
    [empty_note] = await api.keys(pid, note="")
    assert "note" not in plain
    assert "note" not in null_note
    assert empty_note["note"] == ""
    listed = {k["key_id"]: k for k in await api.call("GET", "/api/vendor/keys/buyer")}
    assert "note" not in listed[plain["key_id"]]
    assert "note" not in listed[null_note["key_id"]]
    assert listed[empty_note["key_id"]]["note"] == ""
    active = await api.redeem(plain["key_id"])
    assert "note" not in active
    active = await api.redeem(empty_note["key_id"])
    assert active["note"] == ""


async def test_generate_many_unique(api: Api) -> None:
    project = await api.project()
    created = await api.keys(project["project_id"], amount=1000)
    ids = {k["key_id"] for k in created}
    assert len(ids) == 1000
    assert all(KEY_ID_RE.fullmatch(i) for i in ids)


async def test_generate_without_discord_403(api: Api) -> None:
    other = await api.as_other(discord_id=None)
    project = await other.project()
    pid = project["project_id"]
    dbsize = await data_size(api.store.redis)
    body = {"project_id": pid, "amount": 5}
    assert await other.call("POST", "/api/vendor/keys/buyer", body, status=403) == NO_DISCORD
    assert await other.call("POST", "/api/vendor/keys/buyer/", body, status=403) == NO_DISCORD
    assert await data_size(api.store.redis) == dbsize
    assert await other.call("GET", "/api/vendor/keys/buyer") == []


async def test_generate_unknown_project_404(api: Api) -> None:
    await api.project()
    dbsize = await data_size(api.store.redis)
    for pid in ("00000000-0000-4000-8000-000000000000", "nope"):
        body = {"project_id": pid, "amount": 3}
        got = await api.call("POST", "/api/vendor/keys/buyer", body, status=404)
        assert got == PROJECT_NOT_FOUND
    assert await data_size(api.store.redis) == dbsize
    assert await api.call("GET", "/api/vendor/keys/buyer") == []


# ---- listing buyer keys -------------------------------------------------------------------


async def test_list_buyer_keys(api: Api) -> None:
    p1 = await api.project(name="one")
    p2 = await api.project(name="two")
    k1 = await api.keys(p1["project_id"], amount=2)
    k2 = await api.keys(p2["project_id"], amount=3)
    await api.redeem(k1[0]["key_id"], discord_id="777")

    def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {r["key_id"]: r for r in rows}

    everything = by_id(await api.call("GET", "/api/vendor/keys/buyer"))
    assert set(everything) == {k["key_id"] for k in k1 + k2}
    redeemed = everything[k1[0]["key_id"]]
    assert redeemed == {**k1[0], "redeemed": True, "discord_id": "777"}
    for k in k1[1:] + k2:
        assert everything[k["key_id"]] == k

    only1 = by_id(await api.call("GET", f"/api/vendor/keys/buyer?project_id={p1['project_id']}"))
    assert set(only1) == {k["key_id"] for k in k1}
    assert only1[k1[0]["key_id"]]["redeemed"] is True
    only2 = by_id(await api.call("GET", f"/api/vendor/keys/buyer/?project_id={p2['project_id']}"))
    assert set(only2) == {k["key_id"] for k in k2}

    unknown = "/api/vendor/keys/buyer?project_id=00000000-0000-4000-8000-000000000000"
    assert await api.call("GET", unknown, status=404) == PROJECT_NOT_FOUND
    assert await api.call("GET", "/api/vendor/keys/buyer?project_id=x", status=404) == (
        PROJECT_NOT_FOUND
    )


async def test_list_buyer_keys_empty_project(api: Api) -> None:
    project = await api.project()
    assert await api.call("GET", f"/api/vendor/keys/buyer?project_id={project['project_id']}") == []
    assert await api.call("GET", "/api/vendor/keys/buyer") == []


# ---- deleting buyer keys ------------------------------------------------------------------


async def test_delete_buyer_key(api: Api) -> None:
    project = await api.project()
    a, b, c = await api.keys(project["project_id"], amount=3)
    assert await api.call("DELETE", f"/api/vendor/keys/buyer/{a['key_id']}") == SUCCESS
    assert await api.call("DELETE", f"/api/vendor/keys/buyer/{b['key_id']}/") == SUCCESS
    assert await api.call("GET", "/api/vendor/keys/buyer") == [c]
    assert await api.store.redis.exists(keyspace.key_ref(api.vendor_id, a["key_id"])) == 0
    assert await api.store.redis.exists(keyspace.key(project["project_id"], a["key_id"])) == 0
    # Gone: deleting or redeeming it again is 404.
    again = await api.call("DELETE", f"/api/vendor/keys/buyer/{a['key_id']}", status=404)
    assert again == KEY_NOT_FOUND
    assert await api.redeem(a["key_id"], status=404) == KEY_NOT_FOUND


async def test_delete_redeemed_key_400(api: Api) -> None:
    project = await api.project()
    [key] = await api.keys(project["project_id"])
    active = await api.redeem(key["key_id"])
    got = await api.call("DELETE", f"/api/vendor/keys/buyer/{key['key_id']}", status=400)
    assert got == {"detail": "Cannot delete a redeemed key"}
    assert await api.active(key["key_id"]) == active
    listed = await api.call("GET", "/api/vendor/keys/buyer")
    assert [k["key_id"] for k in listed] == [key["key_id"]]


@pytest.mark.parametrize("key_id", ["A" * 32, "unknown", "bad-id", "a" * 129])
async def test_delete_unknown_key_404(api: Api, key_id: str) -> None:
    project = await api.project()
    existing = await api.keys(project["project_id"])
    got = await api.call("DELETE", f"/api/vendor/keys/buyer/{key_id}", status=404)
    assert got == KEY_NOT_FOUND
    assert await api.call("GET", "/api/vendor/keys/buyer") == existing


# ---- redemption ---------------------------------------------------------------------------


async def test_redeem_shape(api: Api, clock: Clock) -> None:
    project = await api.project()
    [key] = await api.keys(project["project_id"], key_days=2)
    before = _utc(clock())
    active = await api.redeem(key["key_id"], discord_id="123456789012345678")
    after = _utc(clock())
    assert set(active) == ACTIVE_FIELDS
    redeemed_at = ts(active["redeemed_at"])
    assert before <= redeemed_at <= after
    assert active == {
        "key_id": key["key_id"],
        "project_id": project["project_id"],
        "discord_id": "123456789012345678",
        "hwid": None,
        "hwid_resets": 0,
        "total_executions": 0,
        "last_execution": None,
        "last_reset": None,
        "redeemed_at": active["redeemed_at"],
        "expires_at": (redeemed_at + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S"),
        "banned": False,
        "ban_reason": None,
        "ban_expires_at": None,
        "type": "paid",
    }
    assert await api.active(key["key_id"]) == active


async def test_redeem_with_note(api: Api) -> None:
    project = await api.project()
    [key] = await api.keys(project["project_id"], note="for bob")
    active = await api.redeem(key["key_id"])
    assert set(active) == ACTIVE_FIELDS | {"note"}
    assert active["note"] == "for bob"
    assert await api.active(key["key_id"]) == active


async def test_redeem_trailing_slash(api: Api) -> None:
    project = await api.project()
    [key] = await api.keys(project["project_id"])
    body = {"key_id": key["key_id"], "discord_id": "1"}
    active = await api.call("POST", "/api/vendor/keys/redeem/", body)
    assert active["discord_id"] == "1"


async def test_redeem_unknown_404(api: Api) -> None:
    project = await api.project()
    await api.keys(project["project_id"])
    for key_id in ("B" * 32, "x", "bad-id!"):
        assert await api.redeem(key_id, status=404) == KEY_NOT_FOUND
    assert await api.call("GET", "/api/vendor/keys/active") == []


async def test_redeem_twice_400(api: Api) -> None:
    project = await api.project()
    [key] = await api.keys(project["project_id"])
    first = await api.redeem(key["key_id"], discord_id="1")
    for discord_id in ("1", "2"):
        got = await api.redeem(key["key_id"], discord_id=discord_id, status=400)
        assert got == {"detail": "Key already redeemed"}
    assert await api.active(key["key_id"]) == first
    assert await api.call("GET", "/api/vendor/keys/active?discord_id=2") == []


@pytest.mark.parametrize(
    ("days", "hours", "minutes"),
    [
        (30, 0, 0),
        (0, 5, 0),
        (0, 0, 7),
        (1, 2, 3),
        (0, 48, 90),
        (365, 0, 0),
        (0, 0, 1),
        (36500, 876000, 52560000),  # the largest durations the API accepts
    ],
)
async def test_redeem_expiry_arithmetic(api: Api, days: int, hours: int, minutes: int) -> None:
    project = await api.project()
    [key] = await api.keys(
        project["project_id"], key_days=days, key_hours=hours, key_minutes=minutes
    )
    active = await api.redeem(key["key_id"])
    delta = timedelta(days=days, hours=hours, minutes=minutes)
    assert ts(active["expires_at"]) - ts(active["redeemed_at"]) == delta
    listed = await api.active(key["key_id"])
    assert listed["expires_at"] == active["expires_at"]


async def test_redeem_lifetime_key(api: Api) -> None:
    project = await api.project()
    [key] = await api.keys(project["project_id"], key_days=0, key_hours=0, key_minutes=0)
    assert (key["key_days"], key["key_hours"], key["key_minutes"]) == (0, 0, 0)
    active = await api.redeem(key["key_id"])
    assert active["expires_at"] is None
    assert TIMESTAMP_RE.fullmatch(active["redeemed_at"])
    assert (await api.active(key["key_id"]))["expires_at"] is None


async def test_redeemed_at_follows_clock(api: Api, clock: Clock) -> None:
    project = await api.project()
    [key] = await api.keys(project["project_id"], key_days=0, key_hours=1)
    clock.advance(86400 * 3)
    active = await api.redeem(key["key_id"])
    redeemed_at = ts(active["redeemed_at"])
    assert abs((redeemed_at - _utc(clock())).total_seconds()) <= 1
    assert ts(active["expires_at"]) == redeemed_at + timedelta(hours=1)


# ---- listing active keys ------------------------------------------------------------------


async def test_list_active_filters(api: Api) -> None:
    p1 = await api.project(name="one")
    p2 = await api.project(name="two")
    k1 = await api.keys(p1["project_id"], amount=3)
    k2 = await api.keys(p2["project_id"], amount=2)
    a1 = await api.redeem(k1[0]["key_id"], discord_id="100")
    a2 = await api.redeem(k1[1]["key_id"], discord_id="200")
    a3 = await api.redeem(k2[0]["key_id"], discord_id="100")
    # k1[2] and k2[1] stay unredeemed and never show up as active keys.

    def ids(rows: list[dict[str, Any]]) -> set[str]:
        return {r["key_id"] for r in rows}

    everything = await api.call("GET", "/api/vendor/keys/active")
    assert ids(everything) == {a1["key_id"], a2["key_id"], a3["key_id"]}
    assert {r["key_id"]: r for r in everything} == {a["key_id"]: a for a in (a1, a2, a3)}
    for row in everything:
        assert set(row) == ACTIVE_FIELDS

    q1 = f"project_id={p1['project_id']}"
    q2 = f"project_id={p2['project_id']}"
    base = "/api/vendor/keys/active"
    assert ids(await api.call("GET", f"{base}?{q1}")) == {a1["key_id"], a2["key_id"]}
    assert ids(await api.call("GET", f"{base}/?{q2}")) == {a3["key_id"]}
    assert ids(await api.call("GET", f"{base}?discord_id=100")) == {a1["key_id"], a3["key_id"]}
    assert ids(await api.call("GET", f"{base}?discord_id=200")) == {a2["key_id"]}
    assert ids(await api.call("GET", f"{base}?discord_id=300")) == set()
    assert ids(await api.call("GET", f"{base}?{q1}&discord_id=100")) == {a1["key_id"]}
    assert ids(await api.call("GET", f"{base}?{q2}&discord_id=100")) == {a3["key_id"]}
    assert ids(await api.call("GET", f"{base}?{q2}&discord_id=200")) == set()

    unknown = f"{base}?project_id=00000000-0000-4000-8000-000000000000"
    assert await api.call("GET", unknown, status=404) == PROJECT_NOT_FOUND


async def test_list_active_bad_discord_filter_422(api: Api) -> None:
    got = await api.call("GET", "/api/vendor/keys/active?discord_id=abc", status=422)
    assert "discord_id" in got["detail"]


# ---- ban / unban / reset / set HWID --------------------------------------------------------


async def _active_key(api: Api, hwid: str | None = None, **fields: Any) -> tuple[str, str]:
    project = await api.project()
    pid = project["project_id"]
    [key] = await api.keys(pid, **fields)
    await api.redeem(key["key_id"])
    if hwid is not None:
        got = await api.call("PATCH", active_path(key["key_id"], "hwid"), {"new_hwid": hwid})
        assert got == {"status": "success", "hwid": hwid}
    return pid, key["key_id"]


async def test_ban_and_unban(api: Api) -> None:
    pid, kid = await _active_key(api, hwid="HWID-1")
    before = await api.active(kid)
    assert await api.call("POST", active_path(kid, "ban")) == SUCCESS
    assert await api.active(kid) == {**before, "banned": True}
    assert await hwid_bans(api, pid) == {"HWID-1": "1"}
    # Banning again is idempotent and does not double-count the HWID.
    assert await api.call("POST", active_path(kid, "ban") + "/") == SUCCESS
    assert await hwid_bans(api, pid) == {"HWID-1": "1"}

    assert await api.call("POST", active_path(kid, "unban")) == SUCCESS
    assert await api.active(kid) == before
    assert await hwid_bans(api, pid) == {}
    # Unbanning an unbanned key is fine and changes nothing.
    assert await api.call("POST", active_path(kid, "unban") + "/") == SUCCESS
    assert await api.active(kid) == before
    assert await hwid_bans(api, pid) == {}


async def test_ban_without_hwid_blocks_nothing(api: Api) -> None:
    pid, kid = await _active_key(api)
    assert await api.call("POST", active_path(kid, "ban")) == SUCCESS
    assert (await api.active(kid))["banned"] is True
    assert await hwid_bans(api, pid) == {}
    assert await api.call("POST", active_path(kid, "unban")) == SUCCESS
    assert (await api.active(kid))["banned"] is False
    assert await hwid_bans(api, pid) == {}


async def test_shared_hwid_stays_blocked_until_last_unban(api: Api) -> None:
    project = await api.project()
    pid = project["project_id"]
    a, b = await api.keys(pid, amount=2)
    for key in (a, b):
        await api.redeem(key["key_id"])
        await api.call("PATCH", active_path(key["key_id"], "hwid"), {"new_hwid": "SHARED"})
    await api.call("POST", active_path(a["key_id"], "ban"))
    await api.call("POST", active_path(b["key_id"], "ban"))
    assert await hwid_bans(api, pid) == {"SHARED": "2"}
    await api.call("POST", active_path(a["key_id"], "unban"))
    assert await hwid_bans(api, pid) == {"SHARED": "1"}
    assert (await api.active(a["key_id"]))["banned"] is False
    assert (await api.active(b["key_id"]))["banned"] is True
    # Unbanning the same key again must not lift the other key's block.
    await api.call("POST", active_path(a["key_id"], "unban"))
    assert await hwid_bans(api, pid) == {"SHARED": "1"}
    await api.call("POST", active_path(b["key_id"], "unban"))
    assert await hwid_bans(api, pid) == {}


async def test_hwid_ban_survives_hwid_change_of_banned_key(api: Api) -> None:
    pid, kid = await _active_key(api, hwid="OLD")
    await api.call("POST", active_path(kid, "ban"))
    await api.call("PATCH", active_path(kid, "hwid"), {"new_hwid": "NEW"})
    assert await hwid_bans(api, pid) == {"OLD": "1"}
    await api.call("POST", active_path(kid, "unban"))
    # The block that the ban made is the one that is lifted.
    assert await hwid_bans(api, pid) == {}


async def test_reset_hwid(api: Api, clock: Clock) -> None:
    _, kid = await _active_key(api, hwid="HW")
    before = await api.active(kid)
    clock.advance(100)
    assert await api.call("POST", active_path(kid, "reset_hwid")) == SUCCESS
    after = await api.active(kid)
    assert after["hwid"] is None
    assert after["hwid_resets"] == 1
    assert after["last_reset"] is not None
    assert abs((ts(after["last_reset"]) - _utc(clock())).total_seconds()) <= 1
    assert {k: v for k, v in after.items() if k not in ("hwid", "hwid_resets", "last_reset")} == {
        k: v for k, v in before.items() if k not in ("hwid", "hwid_resets", "last_reset")
    }
    # Vendor resets bypass the cooldown: an immediate second reset (no HWID) still counts.
    assert await api.call("POST", active_path(kid, "reset_hwid") + "/") == SUCCESS
    again = await api.active(kid)
    assert again["hwid"] is None
    assert again["hwid_resets"] == 2


async def test_set_hwid(api: Api) -> None:
    _, kid = await _active_key(api)
    path = active_path(kid, "hwid")
    assert await api.call("PATCH", path, {"new_hwid": "abc"}) == {
        "status": "success",
        "hwid": "abc",
    }
    assert (await api.active(kid))["hwid"] == "abc"
    assert await api.call("PATCH", path + "/", {"new_hwid": "def"}) == {
        "status": "success",
        "hwid": "def",
    }
    assert (await api.active(kid))["hwid"] == "def"
    assert await api.call("PATCH", path, {"new_hwid": None}) == {"status": "success", "hwid": None}
    after = await api.active(kid)
    assert after["hwid"] is None
    assert after["hwid_resets"] == 0  # a vendor PATCH is not a reset
    assert after["last_reset"] is None


ACTIONS: list[tuple[str, str, Any]] = [
    ("POST", "ban", None),
    ("POST", "unban", None),
    ("POST", "reset_hwid", None),
    ("PATCH", "hwid", {"new_hwid": "X"}),
]


@pytest.mark.parametrize(("method", "action", "body"), ACTIONS)
async def test_active_actions_on_unknown_or_unredeemed_key_404(
    api: Api, method: str, action: str, body: Any
) -> None:
    project = await api.project()
    [buyer] = await api.keys(project["project_id"])
    dbsize = await api.store.redis.dbsize()
    before = await api.call("GET", "/api/vendor/keys/buyer")
    for kid in (buyer["key_id"], "C" * 32, "short", "bad-id", "a" * 200):
        for path in (active_path(kid, action), active_path(kid, action) + "/"):
            got = await api.call(method, path, body, status=404)
            assert got == KEY_NOT_FOUND, (kid, path)
    assert await api.store.redis.dbsize() == dbsize
    assert await api.call("GET", "/api/vendor/keys/buyer") == before
    assert await api.call("GET", "/api/vendor/keys/active") == []
    # The unredeemed key is still redeemable and untouched.
    active = await api.redeem(buyer["key_id"])
    assert active["hwid"] is None
    assert active["banned"] is False
    assert active["hwid_resets"] == 0


# ---- script cache lost (Redis restarted or SCRIPT FLUSH) -----------------------------------


async def test_generate_after_script_flush_unknown_project_404(api: Api) -> None:
    """The EVAL fallback of generation must map script errors like EVALSHA does: 404, and the
    key -> project refs made for the batch are dropped (regression: was a 500 + leaked refs)."""
    mine = await api.project()
    other = await api.as_other()
    foreign = await other.project()
    dbsize = await data_size(api.store.redis)
    for pid in ("00000000-0000-4000-8000-000000000000", foreign["project_id"]):
        await api.store.redis.script_flush()
        body = {"project_id": pid, "amount": 3}
        got = await api.call("POST", "/api/vendor/keys/buyer", body, status=404)
        assert got == PROJECT_NOT_FOUND
        assert await data_size(api.store.redis) == dbsize
    await api.store.redis.script_flush()
    created = await api.keys(mine["project_id"], amount=3)
    assert len(created) == 3
    assert await other.call("GET", "/api/vendor/keys/buyer") == []


async def test_every_operation_survives_script_flush(api: Api) -> None:
    redis = api.store.redis
    await redis.script_flush()
    project = await api.project()
    pid = project["project_id"]
    await redis.script_flush()
    a, b = await api.keys(pid, amount=2)
    await redis.script_flush()
    active = await api.redeem(a["key_id"], discord_id="9")
    await redis.script_flush()
    assert await api.redeem(a["key_id"], status=400) == {"detail": "Key already redeemed"}
    await redis.script_flush()
    assert await api.redeem("D" * 32, status=404) == KEY_NOT_FOUND
    steps: list[tuple[str, str, Any]] = [
        ("PATCH", active_path(a["key_id"], "hwid"), {"new_hwid": "H"}),
        ("POST", active_path(a["key_id"], "ban"), None),
        ("POST", active_path(a["key_id"], "unban"), None),
        ("POST", active_path(a["key_id"], "reset_hwid"), None),
        ("PATCH", f"/api/vendor/projects/{pid}", {"name": "renamed"}),
    ]
    for method, path, body in steps:
        await redis.script_flush()
        await api.call(method, path, body)
    await redis.script_flush()
    row = await api.active(a["key_id"])
    assert row == {**active, "hwid_resets": 1, "last_reset": row["last_reset"]}
    await redis.script_flush()
    assert len(await api.call("GET", "/api/vendor/keys/buyer")) == 2
    await redis.script_flush()
    got = await api.call("DELETE", f"/api/vendor/keys/buyer/{a['key_id']}", status=400)
    assert got == {"detail": "Cannot delete a redeemed key"}
    await redis.script_flush()
    assert await api.call("DELETE", f"/api/vendor/keys/buyer/{b['key_id']}") == SUCCESS
    await redis.script_flush()
    assert await api.call("DELETE", f"/api/vendor/projects/{pid}") == SUCCESS
    assert await keys_matching(redis, f"*{{{pid}}}*") == []
