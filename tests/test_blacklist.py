"""The vendor-wide blacklist: CRUD, and its effect on the loader check in every project."""

import re

from tests.support.api import Api, execute, keys_matching, setup_key

URL = "/api/vendor/blacklist"


async def test_crud_shapes_and_errors(api: Api) -> None:
    entry = await api.call("POST", URL, {"hwid": "bad-pc"})
    assert set(entry) == {"id", "ip", "hwid", "reason", "attempts", "timestamp"}
    assert entry["hwid"] == "bad-pc" and entry["ip"] is None
    assert entry["reason"] == "Manual ban" and entry["attempts"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", entry["timestamp"])
    both = await api.call(
        "POST", URL + "/", {"ip": "10.0.0.1", "hwid": "x", "reason": "chargeback"}
    )
    assert both["reason"] == "chargeback"
    listed = await api.call("GET", URL)
    assert sorted(e["id"] for e in listed) == sorted([entry["id"], both["id"]])
    resp = await api.client.post(URL, data=b"{", headers=api.auth)
    assert resp.status == 400
    body = await api.call("POST", URL, {"reason": "no target"}, status=400)
    assert body == {"detail": "Must provide either IP or HWID"}
    await api.call("POST", URL, {"ip": "", "hwid": ""}, status=422)  # empty HWID: too short
    body = await api.call("POST", URL, {"ip": "not-an-ip"}, status=400)
    assert "ip" in body["detail"]
    await api.call("POST", URL, {"hwid": 5}, status=422)
    assert await api.call("DELETE", f"{URL}/{entry['id']}") == {"status": "success"}
    body = await api.call("DELETE", f"{URL}/{entry['id']}", status=404)
    assert body == {"detail": "Entry not found"}
    other = await api.as_other()
    assert await other.call("GET", URL) == []
    assert await other.call("DELETE", f"{URL}/{both['id']}", status=404) == {
        "detail": "Entry not found"
    }
    assert len(await api.call("GET", URL)) == 1


async def test_blacklisted_hwid_refused_in_every_project(api: Api) -> None:
    pid1, kid1 = await setup_key(api)
    entry = await api.call("POST", URL, {"hwid": "cheater"})
    pid2, kid2 = await setup_key(api)  # created after the entry: mirrored too
    for pid, kid in ((pid1, kid1), (pid2, kid2)):
        data = await execute(api, pid, kid, hwid="cheater")
        assert data["code"] == "HWID_BANNED"
        assert (await execute(api, pid, kid, hwid="honest"))["code"] == "KEY_VALID"
    # Even a valid, bound key of that machine, and in a free-for-all project.
    await api.call("PATCH", f"/api/vendor/projects/{pid1}", {"ffa_active": True})
    assert (await execute(api, pid1, "", hwid="cheater"))["code"] == "HWID_BANNED"
    [listed] = await api.call("GET", URL)
    assert listed["attempts"] == 3
    # Other vendors' projects do not see it.
    other = await api.as_other()
    opid, okid = await setup_key(other)
    assert (await execute(other, opid, okid, hwid="cheater"))["code"] == "KEY_VALID"
    await api.call("DELETE", f"{URL}/{entry['id']}")
    assert (await execute(api, pid2, "", hwid="cheater"))["code"] == "KEY_INCORRECT"


async def test_blacklisted_ip(api: Api) -> None:
    pid, kid = await setup_key(api)
    entry = await api.call("POST", URL, {"ip": "127.0.0.1", "reason": "abuse"})
    data = await execute(api, pid, kid, hwid="anything")
    assert data["code"] == "HWID_BANNED"
    assert (await api.call("GET", URL))[0]["attempts"] == 1
    await api.call("DELETE", f"{URL}/{entry['id']}")
    assert (await execute(api, pid, kid, hwid="anything"))["code"] == "KEY_VALID"
    # IPv6 forms are canonicalised.
    entry = await api.call("POST", URL, {"ip": "0:0:0:0:0:0:0:1"})
    assert entry["ip"] == "::1"


async def test_overlapping_entries(api: Api) -> None:
    pid, kid = await setup_key(api)
    first = await api.call("POST", URL, {"hwid": "shared"})
    second = await api.call("POST", URL, {"hwid": "shared", "reason": "again"})
    await api.call("DELETE", f"{URL}/{first['id']}")
    assert (await execute(api, pid, kid, hwid="shared"))["code"] == "HWID_BANNED"
    await api.call("DELETE", f"{URL}/{second['id']}")
    assert (await execute(api, pid, kid, hwid="shared"))["code"] == "KEY_VALID"


async def test_project_delete_drops_mirrors(api: Api) -> None:
    pid, _ = await setup_key(api)
    await api.call("POST", URL, {"hwid": "h", "ip": "10.1.1.1"})
    await api.call("DELETE", f"/api/vendor/projects/{pid}")
    assert await keys_matching(api.store.redis, f"*{{{pid}}}*") == []
    [entry] = await api.call("GET", URL)
    assert entry["attempts"] == 0
