"""Projects: create, list, get, patch, delete, trailing slashes, 404s and authentication."""

import re
import uuid
from typing import Any

import pytest

from store import keyspace
from tests.support.api import Api, keys_matching

PROJECT_FIELDS = {
    "project_id",
    "name",
    "description",
    "ffa_active",
    "is_active",
    "webhook_url",
    "notify_enabled",
    "silent_mode",
    "hwid_reset_cooldown",
    "discord_guild_id",
    "discord_role_id",
    "version",
    "created_at",
    "signed_verdicts",
    "watermark",
    "obfuscation",
    "obfuscation_job",
}
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
NOT_FOUND = {"detail": "Project not found"}
UNAUTHENTICATED = {"detail": "Not authenticated"}


async def test_create_defaults(api: Api) -> None:
    project = await api.project(name="Hub")
    assert set(project) == PROJECT_FIELDS
    assert str(uuid.UUID(project["project_id"])) == project["project_id"]
    assert TIMESTAMP_RE.fullmatch(project["created_at"])
    assert {k: v for k, v in project.items() if k not in ("project_id", "created_at")} == {
        "name": "Hub",
        "description": "",
        "ffa_active": False,
        "is_active": True,
        "webhook_url": None,
        "notify_enabled": True,
        "silent_mode": False,
        "hwid_reset_cooldown": 86400,
        "discord_guild_id": None,
        "discord_role_id": None,
        "version": "0.0.0",
        "signed_verdicts": True,
        "watermark": False,
        "obfuscation": "off",
        "obfuscation_job": None,
    }


async def test_create_every_field(api: Api) -> None:
    fields: dict[str, Any] = {
        "name": "Full",
        "description": "d" * 255,
        "ffa_active": True,
        "webhook_url": "https://example.com/hook?x=1",
        "notify_enabled": False,
        "silent_mode": True,
        "hwid_reset_cooldown": 0,
        "discord_guild_id": "1100000000000000001",
        "discord_role_id": "1200000000000000002",
        "signed_verdicts": False,
        "watermark": True,
    }
    project = await api.project(**fields)
    assert set(project) == PROJECT_FIELDS
    for name, value in fields.items():
        assert project[name] == value, name
    assert project["is_active"] is True
    assert project["version"] == "0.0.0"
    # The stored project reads back identically.
    got = await api.call("GET", f"/api/vendor/projects/{project['project_id']}")
    assert got == project


async def test_create_http_webhook_and_name_bounds(api: Api) -> None:
    project = await api.project(name="n" * 100, webhook_url="http://hooks.local/x")
    assert project["name"] == "n" * 100
    assert project["webhook_url"] == "http://hooks.local/x"
    one = await api.project(name="x")
    assert one["name"] == "x"


async def test_list_and_get(api: Api) -> None:
    assert await api.call("GET", "/api/vendor/projects") == []
    a = await api.project(name="A")
    b = await api.project(name="B", description="second")
    listed = await api.call("GET", "/api/vendor/projects")
    assert isinstance(listed, list)
    assert sorted(listed, key=lambda p: p["name"]) == [a, b]
    for project in (a, b):
        got = await api.call("GET", f"/api/vendor/projects/{project['project_id']}")
        assert got == project
    # Another vendor's listing does not include them.
    other = await api.as_other()
    assert await other.call("GET", "/api/vendor/projects") == []


async def test_patch_partial(api: Api) -> None:
    project = await api.project(name="Before", description="keep me")
    pid = project["project_id"]
    path = f"/api/vendor/projects/{pid}"

    patched = await api.call("PATCH", path, {"name": "After"})
    assert patched == {**project, "name": "After"}

    patched = await api.call("PATCH", path, {"is_active": False, "ffa_active": True})
    assert patched == {**project, "name": "After", "is_active": False, "ffa_active": True}

    patched = await api.call(
        "PATCH",
        path,
        {"notify_enabled": False, "silent_mode": True, "hwid_reset_cooldown": 60},
    )
    expected = {
        **project,
        "name": "After",
        "is_active": False,
        "ffa_active": True,
        "notify_enabled": False,
        "silent_mode": True,
        "hwid_reset_cooldown": 60,
    }
    assert patched == expected

    patched = await api.call("PATCH", path, {"description": ""})
    expected["description"] = ""
    assert patched == expected

    patched = await api.call("PATCH", path, {"is_active": True})
    expected["is_active"] = True
    assert patched == expected

    # Empty patch changes nothing.
    assert await api.call("PATCH", path, {}) == expected
    assert await api.call("GET", path) == expected
    assert await api.call("GET", "/api/vendor/projects") == [expected]


async def test_patch_webhook_set_and_clear(api: Api) -> None:
    project = await api.project()
    path = f"/api/vendor/projects/{project['project_id']}"
    patched = await api.call("PATCH", path, {"webhook_url": "https://discord.com/api/webhooks/1"})
    assert patched["webhook_url"] == "https://discord.com/api/webhooks/1"
    assert (await api.call("GET", path))["webhook_url"] == "https://discord.com/api/webhooks/1"
    patched = await api.call("PATCH", path, {"webhook_url": None})
    assert patched["webhook_url"] is None
    assert await api.call("GET", path) == project


async def test_delete_removes_project_and_keys(api: Api) -> None:
    keep = await api.project(name="keep")
    keep_keys = await api.keys(keep["project_id"], amount=2)

    project = await api.project(name="doomed")
    pid = project["project_id"]
    buyer = await api.keys(pid, amount=3, note="n")
    await api.redeem(buyer[0]["key_id"], discord_id="42")
    await api.call(
        "PATCH", f"/api/vendor/keys/active/{buyer[0]['key_id']}/hwid", {"new_hwid": "HW"}
    )
    await api.call("POST", f"/api/vendor/keys/active/{buyer[0]['key_id']}/ban")
    assert await keys_matching(api.store.redis, f"*{{{pid}}}*")

    assert await api.call("DELETE", f"/api/vendor/projects/{pid}") == {"status": "success"}

    assert await api.call("GET", f"/api/vendor/projects/{pid}", status=404) == NOT_FOUND
    assert await api.call("GET", "/api/vendor/projects") == [keep]
    path = f"/api/vendor/keys/buyer?project_id={pid}"
    assert await api.call("GET", path, status=404) == NOT_FOUND
    remaining = await api.call("GET", "/api/vendor/keys/buyer")
    assert sorted(remaining, key=lambda k: k["key_id"]) == sorted(
        keep_keys, key=lambda k: k["key_id"]
    )
    assert await api.call("GET", "/api/vendor/keys/active") == []
    assert await keys_matching(api.store.redis, f"*{{{pid}}}*") == []
    for key in buyer:
        assert await api.store.redis.exists(keyspace.key_ref(api.vendor_id, key["key_id"])) == 0
        kid = key["key_id"]
        ban = await api.call("POST", f"/api/vendor/keys/active/{kid}/ban", status=404)
        assert ban == {"detail": "Key not found"}
        gone = await api.call("DELETE", f"/api/vendor/keys/buyer/{kid}", status=404)
        assert gone == {"detail": "Key not found"}
    assert await api.store.redis.sismember(keyspace.vendor_projects(api.vendor_id), pid) == 0
    # The other project is untouched.
    assert await api.call("GET", f"/api/vendor/projects/{keep['project_id']}") == keep

    # Deleting again, patching or generating into it: 404.
    assert await api.call("DELETE", f"/api/vendor/projects/{pid}", status=404) == NOT_FOUND
    patch = await api.call("PATCH", f"/api/vendor/projects/{pid}", {"name": "x"}, status=404)
    assert patch == NOT_FOUND
    body = {"project_id": pid}
    assert await api.call("POST", "/api/vendor/keys/buyer", body, status=404) == NOT_FOUND
    assert await keys_matching(api.store.redis, f"*{{{pid}}}*") == []


async def test_trailing_slash_variants(api: Api) -> None:
    created = await api.call("POST", "/api/vendor/projects/", {"name": "slash"}, status=201)
    pid = created["project_id"]
    assert await api.call("GET", "/api/vendor/projects/") == [created]
    assert await api.call("GET", f"/api/vendor/projects/{pid}/") == created
    patched = await api.call("PATCH", f"/api/vendor/projects/{pid}/", {"name": "renamed"})
    assert patched == {**created, "name": "renamed"}
    assert await api.call("DELETE", f"/api/vendor/projects/{pid}/") == {"status": "success"}
    assert await api.call("GET", f"/api/vendor/projects/{pid}/", status=404) == NOT_FOUND
    assert await api.call("GET", "/api/vendor/projects/") == []


@pytest.mark.parametrize(
    "project_id",
    [
        "00000000-0000-4000-8000-000000000000",
        "not-a-uuid",
        "12345",
        "00000000-0000-4000-8000-00000000000",
        "00000000-0000-4000-8000-0000000000000",
        "*",
        "%2A",
        "00000000-0000-4000-8000-00000000000%2A",
    ],
)
async def test_unknown_or_malformed_project_404(api: Api, project_id: str) -> None:
    real = await api.project()
    base = "/api/vendor/projects/"
    for path in (base + project_id, base + project_id + "/"):
        assert await api.call("GET", path, status=404) == NOT_FOUND
        assert await api.call("PATCH", path, {"name": "x"}, status=404) == NOT_FOUND
        assert await api.call("DELETE", path, status=404) == NOT_FOUND
    assert await api.call("GET", "/api/vendor/projects") == [real]


async def test_uppercase_uuid_does_not_name_a_project(api: Api) -> None:
    project = await api.project()
    path = f"/api/vendor/projects/{project['project_id'].upper()}"
    assert await api.call("GET", path, status=404) == NOT_FOUND


VENDOR_ROUTES: list[tuple[str, str]] = [
    ("POST", "/api/vendor/projects"),
    ("GET", "/api/vendor/projects"),
    ("GET", "/api/vendor/projects/{pid}"),
    ("PATCH", "/api/vendor/projects/{pid}"),
    ("DELETE", "/api/vendor/projects/{pid}"),
    ("PUT", "/api/vendor/projects/{pid}/source"),
    ("POST", "/api/vendor/keys/buyer"),
    ("GET", "/api/vendor/keys/buyer"),
    ("DELETE", "/api/vendor/keys/buyer/{kid}"),
    ("POST", "/api/vendor/keys/redeem"),
    ("GET", "/api/vendor/keys/active"),
    ("POST", "/api/vendor/keys/active/{kid}/ban"),
    ("POST", "/api/vendor/keys/active/{kid}/unban"),
    ("POST", "/api/vendor/keys/active/{kid}/reset_hwid"),
    ("PATCH", "/api/vendor/keys/active/{kid}/hwid"),
    ("POST", "/api/vendor/api_key/rotate"),
]


def _bad_auth_headers(api_key: str) -> list[dict[str, str]]:
    return [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer l7_wrong"},
        {"Authorization": "Bearer " + api_key + "x"},
        {"Authorization": "Bearer " + "a" * 300},
        {"Authorization": api_key},
        {"Authorization": "Basic " + api_key},
        {"Authorization": "Token " + api_key},
        {"Authorization": "Bearer" + api_key},
    ]


@pytest.mark.parametrize(("method", "template"), VENDOR_ROUTES)
async def test_unauthenticated_on_every_vendor_route(api: Api, method: str, template: str) -> None:
    project = await api.project()
    pid = project["project_id"]
    [key] = await api.keys(pid)
    kid = key["key_id"]
    await api.redeem(kid)
    before_projects = await api.call("GET", "/api/vendor/projects")
    before_active = await api.call("GET", "/api/vendor/keys/active")
    bodies: dict[str, Any] = {
        "/api/vendor/projects": {"name": "sneaky"},
        "/api/vendor/projects/{pid}": {"name": "sneaky"},
        "/api/vendor/projects/{pid}/source": {"source": "print('sneaky')"},
        "/api/vendor/keys/buyer": {"project_id": pid, "amount": 5},
        "/api/vendor/keys/redeem": {"key_id": kid, "discord_id": "1"},
        "/api/vendor/keys/active/{kid}/hwid": {"new_hwid": "sneaky"},
    }
    body = bodies.get(template)
    path = template.format(pid=pid, kid=kid)
    dbsize = await api.store.redis.dbsize()
    for p in (path, path + "/"):
        for headers in _bad_auth_headers(api.api_key):
            resp = await api.client.request(method, p, json=body, headers=headers)
            assert resp.status == 401, (p, headers, resp.status)
            assert await resp.json() == UNAUTHENTICATED
            assert resp.headers.get("WWW-Authenticate") == "Bearer"
    assert await api.store.redis.dbsize() == dbsize
    assert await api.call("GET", "/api/vendor/projects") == before_projects
    assert await api.call("GET", "/api/vendor/keys/active") == before_active


async def test_bearer_scheme_is_case_insensitive(api: Api) -> None:
    await api.project()
    resp = await api.client.get(
        "/api/vendor/projects", headers={"Authorization": f"bearer {api.api_key}"}
    )
    assert resp.status == 200
    assert len(await resp.json()) == 1
