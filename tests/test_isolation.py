"""A vendor never sees or changes another vendor's projects or keys: everything looks missing."""

from typing import Any

from tests.support.api import Api, data_size, keys_matching

PROJECT_NOT_FOUND = {"detail": "Project not found"}
KEY_NOT_FOUND = {"detail": "Key not found"}


async def _raw(api: Api, path: str) -> bytes:
    resp = await api.client.get(path, headers=api.auth)
    assert resp.status == 200, (path, resp.status)
    return await resp.read()


async def _snapshot(api: Api, project_id: str) -> dict[str, bytes]:
    """A's view of its data, as raw response bytes."""
    paths = [
        "/api/vendor/projects",
        f"/api/vendor/projects/{project_id}",
        "/api/vendor/keys/buyer",
        f"/api/vendor/keys/buyer?project_id={project_id}",
        "/api/vendor/keys/active",
        f"/api/vendor/keys/active?project_id={project_id}",
        "/api/vendor/keys/active?discord_id=555",
    ]
    return {p: await _raw(api, p) for p in paths}


async def test_foreign_vendor_sees_nothing_and_changes_nothing(api: Api) -> None:
    a = api
    project = await a.project(name="A's", webhook_url="https://a.example/hook")
    pid = project["project_id"]
    buyer, redeemed, banned = await a.keys(pid, amount=3, note="a-note")
    await a.redeem(redeemed["key_id"], discord_id="555")
    await a.redeem(banned["key_id"], discord_id="555")
    hwid_path = f"/api/vendor/keys/active/{banned['key_id']}/hwid"
    await a.call("PATCH", hwid_path, {"new_hwid": "A-HWID"})
    await a.call("POST", f"/api/vendor/keys/active/{banned['key_id']}/ban")
    await a.call("PATCH", f"/api/vendor/keys/active/{redeemed['key_id']}/hwid", {"new_hwid": "R"})

    before = await _snapshot(a, pid)
    raw_before = {
        k: await a.store.redis.dump(k) for k in await keys_matching(a.store.redis, f"*{{{pid}}}*")
    }

    b = await a.as_other()
    b_project = await b.project(name="B's")
    b_pid = b_project["project_id"]
    dbsize = await data_size(a.store.redis)

    # Projects.
    path = f"/api/vendor/projects/{pid}"
    for p in (path, path + "/"):
        assert await b.call("GET", p, status=404) == PROJECT_NOT_FOUND
        patch = {"name": "pwned", "is_active": False}
        assert await b.call("PATCH", p, patch, status=404) == PROJECT_NOT_FOUND
        assert await b.call("PATCH", p, {}, status=404) == PROJECT_NOT_FOUND
        assert await b.call("DELETE", p, status=404) == PROJECT_NOT_FOUND

    # Generating into A's project.
    for amount in (1, 50):
        body = {"project_id": pid, "amount": amount}
        got = await b.call("POST", "/api/vendor/keys/buyer", body, status=404)
        assert got == PROJECT_NOT_FOUND

    # Listing with A's project_id.
    for base in ("/api/vendor/keys/buyer", "/api/vendor/keys/active"):
        got = await b.call("GET", f"{base}?project_id={pid}", status=404)
        assert got == PROJECT_NOT_FOUND
    path = f"/api/vendor/keys/active?project_id={pid}&discord_id=555"
    assert await b.call("GET", path, status=404) == PROJECT_NOT_FOUND

    # B's unfiltered listings show none of A's data.
    assert await b.call("GET", "/api/vendor/projects") == [b_project]
    assert await b.call("GET", "/api/vendor/keys/buyer") == []
    assert await b.call("GET", "/api/vendor/keys/active") == []
    assert await b.call("GET", "/api/vendor/keys/active?discord_id=555") == []

    # Keys: every key of A, in every state, looks missing.
    for key in (buyer, redeemed, banned):
        kid = key["key_id"]
        for suffix in ("", "/"):
            got = await b.call("DELETE", f"/api/vendor/keys/buyer/{kid}{suffix}", status=404)
            assert got == KEY_NOT_FOUND
            body: dict[str, Any] = {"key_id": kid, "discord_id": "999"}
            got = await b.call("POST", f"/api/vendor/keys/redeem{suffix}", body, status=404)
            assert got == KEY_NOT_FOUND
            for action in ("ban", "unban", "reset_hwid"):
                path = f"/api/vendor/keys/active/{kid}/{action}{suffix}"
                assert await b.call("POST", path, status=404) == KEY_NOT_FOUND
            path = f"/api/vendor/keys/active/{kid}/hwid{suffix}"
            for new_hwid in ("B-HWID", None):
                got = await b.call("PATCH", path, {"new_hwid": new_hwid}, status=404)
                assert got == KEY_NOT_FOUND

    # A's data is byte-identical, in the API and in Redis.
    assert await _snapshot(a, pid) == before
    raw_after = {
        k: await a.store.redis.dump(k) for k in await keys_matching(a.store.redis, f"*{{{pid}}}*")
    }
    assert raw_after == raw_before
    assert await data_size(a.store.redis) == dbsize  # not even a stray key -> project ref

    # And A can still act on all of it.
    assert await a.redeem(buyer["key_id"], discord_id="1") is not None
    await a.call("POST", f"/api/vendor/keys/active/{banned['key_id']}/unban")
    assert (await a.active(banned["key_id"]))["banned"] is False
    # B's own project is unaffected by all of this.
    assert await b.call("GET", f"/api/vendor/projects/{b_pid}") == b_project


async def test_foreign_project_cannot_be_deleted_with_its_keys(api: Api) -> None:
    project = await api.project()
    pid = project["project_id"]
    created = await api.keys(pid, amount=5)
    other = await api.as_other()
    for _ in range(2):
        got = await other.call("DELETE", f"/api/vendor/projects/{pid}", status=404)
        assert got == PROJECT_NOT_FOUND
    assert await api.call("GET", f"/api/vendor/projects/{pid}") == project
    listed = await api.call("GET", "/api/vendor/keys/buyer")
    assert sorted(k["key_id"] for k in listed) == sorted(k["key_id"] for k in created)


async def test_same_discord_user_across_vendors(api: Api) -> None:
    """A Discord user who redeemed with two vendors is seen by each only for its own keys."""
    other = await api.as_other()
    pa = await api.project()
    pb = await other.project()
    [ka] = await api.keys(pa["project_id"])
    [kb] = await other.keys(pb["project_id"])
    await api.redeem(ka["key_id"], discord_id="321")
    await other.redeem(kb["key_id"], discord_id="321")
    mine = await api.call("GET", "/api/vendor/keys/active?discord_id=321")
    theirs = await other.call("GET", "/api/vendor/keys/active?discord_id=321")
    assert [k["key_id"] for k in mine] == [ka["key_id"]]
    assert [k["key_id"] for k in theirs] == [kb["key_id"]]
