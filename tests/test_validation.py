"""Rejected request bodies: 400 / 422 with a detail naming the field, and nothing written."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from service.config import Settings
from tests.support.api import Api

ZERO_UUID = "00000000-0000-4000-8000-000000000000"


@dataclass
class World:
    """A vendor with one project, one buyer key and one active key with a HWID."""

    api: Api
    project_id: str
    buyer_key: str
    active_key: str

    async def state(self) -> tuple[int, Any, Any, Any, Any]:
        return (
            await self.api.store.redis.dbsize(),
            await self.api.call("GET", "/api/vendor/projects"),
            await self.api.call("GET", "/api/vendor/keys/buyer"),
            await self.api.call("GET", "/api/vendor/keys/active"),
            await self.api.call("GET", "/api/vendor/keys/active?discord_id=555"),
        )

    async def rejected(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        status: int = 422,
        field: str | None = None,
    ) -> str:
        """Sends the request (with and without a trailing slash); asserts the status, that
        ``detail`` names ``field`` and that nothing was written. Returns the detail."""
        before = await self.state()
        detail = ""
        for p in (path, path + "/"):
            headers = {**self.api.auth, "Content-Type": "application/json"}
            data = raw if raw is not None else json.dumps(body).encode()
            resp = await self.api.client.request(method, p, data=data, headers=headers)
            got = await resp.json()
            assert resp.status == status, (p, body, resp.status, got)
            assert set(got) == {"detail"}, got
            detail = got["detail"]
            assert isinstance(detail, str)
            assert detail
            if field is not None:
                assert field in detail, (field, detail)
        assert await self.state() == before
        return detail


@pytest.fixture
async def world(api: Api) -> World:
    project = await api.project()
    pid = project["project_id"]
    buyer, active = await api.keys(pid, amount=2)
    await api.redeem(active["key_id"])
    path = f"/api/vendor/keys/active/{active['key_id']}/hwid"
    await api.call("PATCH", path, {"new_hwid": "HW"})
    return World(api, pid, buyer["key_id"], active["key_id"])


def _routes(w: World) -> list[tuple[str, str]]:
    return [
        ("POST", "/api/vendor/projects"),
        ("PATCH", f"/api/vendor/projects/{w.project_id}"),
        ("POST", "/api/vendor/keys/buyer"),
        ("POST", "/api/vendor/keys/redeem"),
        ("PATCH", f"/api/vendor/keys/active/{w.active_key}/hwid"),
    ]


MALFORMED: list[bytes] = [b"{", b"not json", b'{"name": "x",}', b"", b"\xff\xfe", b'{"name": "x"']


async def test_malformed_json_400(world: World) -> None:
    for raw in MALFORMED:
        for method, path in _routes(world):
            await world.rejected(method, path, raw=raw, status=400)


async def test_trailing_garbage_rejected(world: World) -> None:
    """msgspec validates while it parses, so trailing garbage after an object that lacks a
    required field reports the field (422); either way the body is rejected (400 or 422)."""
    api = world.api
    before = await world.state()
    headers = {**api.auth, "Content-Type": "application/json"}
    for method, path in _routes(world):
        for raw in (b'{"name": "x"} trailing', b"{} {}", b'{"new_hwid": "x"}]'):
            resp = await api.client.request(method, path, data=raw, headers=headers)
            assert resp.status in (400, 422), (path, raw, resp.status)
            assert set(await resp.json()) == {"detail"}
    assert await world.state() == before


async def test_non_object_body_422(world: World) -> None:
    for body in ([], [{"name": "x"}], "string", 5, None, True):
        for method, path in _routes(world):
            await world.rejected(method, path, body=body, status=422)


# ---- projects -------------------------------------------------------------------------------

PROJECT_CASES: list[tuple[dict[str, Any], str]] = [
    ({"name": 5}, "name"),
    ({"name": None}, "name"),
    ({"name": ""}, "name"),
    ({"name": "n" * 101}, "name"),
    ({"name": "ok", "description": "d" * 256}, "description"),
    ({"name": "ok", "description": None}, "description"),
    ({"name": "ok", "ffa_active": "yes"}, "ffa_active"),
    ({"name": "ok", "ffa_active": 1}, "ffa_active"),
    ({"name": "ok", "notify_enabled": "true"}, "notify_enabled"),
    ({"name": "ok", "silent_mode": 0}, "silent_mode"),
    ({"name": "ok", "webhook_url": "ftp://x"}, "webhook_url"),
    ({"name": "ok", "webhook_url": "not a url"}, "webhook_url"),
    ({"name": "ok", "webhook_url": "https://"}, "webhook_url"),
    ({"name": "ok", "webhook_url": 5}, "webhook_url"),
    ({"name": "ok", "hwid_reset_cooldown": -1}, "hwid_reset_cooldown"),
    ({"name": "ok", "hwid_reset_cooldown": "60"}, "hwid_reset_cooldown"),
    ({"name": "ok", "hwid_reset_cooldown": 1.5}, "hwid_reset_cooldown"),
    ({"name": "ok", "discord_guild_id": "abc"}, "discord_guild_id"),
    ({"name": "ok", "discord_guild_id": 1100000000000000001}, "discord_guild_id"),
    ({"name": "ok", "discord_guild_id": "1" * 21}, "discord_guild_id"),
    ({"name": "ok", "discord_role_id": ""}, "discord_role_id"),
    ({"name": "ok", "discord_role_id": "12\n"}, "discord_role_id"),
    ({"name": "ok", "colour": "red"}, "colour"),
    ({"name": "ok", "vendor_id": "someone-else"}, "vendor_id"),
    ({"name": "ok", "version": "9.9.9"}, "version"),
]


async def test_project_create_invalid(world: World) -> None:
    for body, field in PROJECT_CASES:
        await world.rejected("POST", "/api/vendor/projects", body=body, field=field)


async def test_project_create_name_required(world: World) -> None:
    await world.rejected("POST", "/api/vendor/projects", body={}, field="name")


async def test_project_create_is_active_is_not_a_create_field(world: World) -> None:
    body = {"name": "ok", "is_active": False}
    await world.rejected("POST", "/api/vendor/projects", body=body, field="is_active")


async def test_project_patch_invalid(world: World) -> None:
    # The same rules apply to a partial update (drop the valid "name" where it is not tested).
    path = f"/api/vendor/projects/{world.project_id}"
    for body, field in PROJECT_CASES[2:]:
        if field != "name":
            body = {k: v for k, v in body.items() if k != "name"}
        await world.rejected("PATCH", path, body=body, field=field)


async def test_project_patch_invalid_more(world: World) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": None}, "name"),
        ({"name": 5}, "name"),
        ({"is_active": "no"}, "is_active"),
        ({"is_active": None}, "is_active"),
        ({"project_id": ZERO_UUID}, "project_id"),
        ({"created_at": "2020-01-01T00:00:00"}, "created_at"),
        ({"name": "valid", "bogus": 1}, "bogus"),
    ]
    path = f"/api/vendor/projects/{world.project_id}"
    for body, field in cases:
        await world.rejected("PATCH", path, body=body, field=field)


async def test_patch_unknown_project_with_valid_body_404(world: World) -> None:
    before = await world.state()
    path = f"/api/vendor/projects/{ZERO_UUID}"
    got = await world.api.call("PATCH", path, {"name": "x"}, status=404)
    assert got == {"detail": "Project not found"}
    assert await world.state() == before


# ---- buyer key generation ------------------------------------------------------------------


GENERATE_CASES: list[tuple[dict[str, Any], str]] = [
    ({"amount": "5"}, "amount"),
    ({"amount": 0}, "amount"),
    ({"amount": 1001}, "amount"),
    ({"amount": -1}, "amount"),
    ({"amount": 2.5}, "amount"),
    ({"amount": None}, "amount"),
    ({"amount": True}, "amount"),
    ({"key_days": -1}, "key_days"),
    ({"key_hours": -1}, "key_hours"),
    ({"key_minutes": -1}, "key_minutes"),
    ({"key_days": "1"}, "key_days"),
    ({"key_hours": 1.5}, "key_hours"),
    ({"key_minutes": None}, "key_minutes"),
    ({"note": "n" * 256}, "note"),
    ({"note": 5}, "note"),
]


async def test_generate_invalid(world: World) -> None:
    for extra, field in GENERATE_CASES:
        body = {"project_id": world.project_id, **extra}
        await world.rejected("POST", "/api/vendor/keys/buyer", body=body, field=field)


async def test_generate_invalid_project_id(world: World) -> None:
    for project_id in (None, 5, "", "x" * 65):
        body = {"project_id": project_id}
        await world.rejected("POST", "/api/vendor/keys/buyer", body=body, field="project_id")


async def test_generate_missing_project_id(world: World) -> None:
    body = {"amount": 1}
    await world.rejected("POST", "/api/vendor/keys/buyer", body=body, field="project_id")


async def test_generate_unknown_project_404(world: World) -> None:
    for project_id in (ZERO_UUID, "not-a-uuid", "x" * 64, world.project_id.upper()):
        body = {"project_id": project_id, "amount": 10}
        detail = await world.rejected("POST", "/api/vendor/keys/buyer", body=body, status=404)
        assert detail == "Project not found"


async def test_generate_bounds_accepted(world: World) -> None:
    """The edges of the ranges are valid (the rejections above are not off by one)."""
    api = world.api
    created = await api.keys(world.project_id, amount=1000, key_days=0, key_minutes=0)
    assert len(created) == 1000
    [key] = await api.keys(world.project_id, amount=1, note="n" * 255)
    assert key["note"] == "n" * 255


# ---- redemption and HWID -------------------------------------------------------------------


REDEEM_CASES: list[tuple[dict[str, Any], str]] = [
    ({"discord_id": "abc"}, "discord_id"),
    ({"discord_id": ""}, "discord_id"),
    ({"discord_id": "12a"}, "discord_id"),
    ({"discord_id": 555}, "discord_id"),
    ({"discord_id": None}, "discord_id"),
    ({"discord_id": "1" * 21}, "discord_id"),
    ({}, "discord_id"),
    ({"discord_id": "555", "key_id": 5}, "key_id"),
    ({"discord_id": "555", "key_id": ""}, "key_id"),
    ({"discord_id": "555", "key_id": None}, "key_id"),
]


async def test_redeem_invalid(world: World) -> None:
    for body, field in REDEEM_CASES:
        full = {"key_id": world.buyer_key, **body}
        await world.rejected("POST", "/api/vendor/keys/redeem", body=full, field=field)
    # The key is still redeemable.
    active = await world.api.redeem(world.buyer_key)
    assert active["discord_id"] == "555"


async def test_redeem_missing_key_id(world: World) -> None:
    body = {"discord_id": "555"}
    await world.rejected("POST", "/api/vendor/keys/redeem", body=body, field="key_id")


HWID_CASES: list[tuple[dict[str, Any], str]] = [
    ({"new_hwid": ""}, "new_hwid"),
    ({"new_hwid": 5}, "new_hwid"),
    ({"new_hwid": ["a"]}, "new_hwid"),
    ({"new_hwid": "h" * 513}, "new_hwid"),
    ({}, "new_hwid"),
    ({"hwid": "x"}, "new_hwid"),
]


async def test_set_hwid_invalid(world: World) -> None:
    path = f"/api/vendor/keys/active/{world.active_key}/hwid"
    for body, field in HWID_CASES:
        await world.rejected("PATCH", path, body=body, field=field)
    assert (await world.api.active(world.active_key))["hwid"] == "HW"


# ---- body size -----------------------------------------------------------------------------


def _padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON padded with whitespace to exactly ``size`` bytes (still valid JSON)."""
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


async def test_oversized_body_400(world: World, settings: Settings) -> None:
    limit = settings.max_body
    assert limit == 64 * 1024
    cases = [
        ("POST", "/api/vendor/projects", {"name": "big"}),
        ("PATCH", f"/api/vendor/projects/{world.project_id}", {"name": "big"}),
        ("POST", "/api/vendor/keys/buyer", {"project_id": world.project_id}),
        ("POST", "/api/vendor/keys/redeem", {"key_id": world.buyer_key, "discord_id": "1"}),
        ("PATCH", f"/api/vendor/keys/active/{world.active_key}/hwid", {"new_hwid": "big"}),
    ]
    for method, path, body in cases:
        for size in (limit + 1, 4 * limit):
            detail = await world.rejected(method, path, raw=_padded(body, size), status=400)
            assert "too large" in detail, detail
    # A real oversized field (not just padding) is rejected the same way.
    body = {"name": "x", "description": "d" * (limit + 10)}
    detail = await world.rejected("POST", "/api/vendor/projects", body=body, status=400)
    assert "too large" in detail


async def test_body_at_the_limit_is_accepted(world: World, settings: Settings) -> None:
    api = world.api
    raw = _padded({"name": "edge"}, settings.max_body)
    headers = {**api.auth, "Content-Type": "application/json"}
    resp = await api.client.post("/api/vendor/projects", data=raw, headers=headers)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["name"] == "edge"


async def test_oversized_chunked_body_400(world: World, settings: Settings) -> None:
    """Without a Content-Length (chunked upload) the limit holds too."""
    api = world.api
    before = await world.state()

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "chunked"'
        for _ in range(settings.max_body // 1024 + 2):
            yield b" " * 1024
        yield b"}"

    headers = {**api.auth, "Content-Type": "application/json"}
    resp = await api.client.post("/api/vendor/projects", data=chunks(), headers=headers)
    assert resp.status == 400
    assert "too large" in (await resp.json())["detail"]
    assert await world.state() == before
