"""Key ids are private to their vendor (issue 22, defect 4): an import tells a vendor nothing
about ids outside their own account, two vendors may each hold the same id (each working in
its own project, where the loader check names the project), every route that takes a bare key
id acts on the caller's own key, and refs written before refs were per vendor keep resolving.
"""

import asyncio
from typing import Any

from store import keyspace
from tests.support.api import Api, execute, keys_matching

IMPORT = "/api/vendor/keys/import"
ACTIVE = "/api/vendor/keys/active"
BUYER = "/api/vendor/keys/buyer"
SAME = "KEY-00000001"


async def import_keys(api: Api, project_id: str, keys: list[Any]) -> Any:
    return await api.call("POST", IMPORT, {"project_id": project_id, "keys": keys})


async def export(api: Api, project_id: str) -> str:
    resp = await api.client.get(f"/api/vendor/export?project_id={project_id}", headers=api.auth)
    assert resp.status == 200, await resp.text()
    return await resp.text()


async def test_import_says_nothing_about_other_vendors_ids(api: Api) -> None:
    a = api
    a_pid = (await a.project(name="A's"))["project_id"]
    [generated] = await a.keys(a_pid)
    got = await import_keys(a, a_pid, [{"key_id": SAME, "hwid": "HW-A", "discord_id": "11"}])
    assert got["imported"] == 1
    a_before = await export(a, a_pid)

    b = await a.as_other()
    b_pid = (await b.project(name="B's"))["project_id"]
    # An id A holds (imported or generated here) and one nobody holds: the same answer.
    batch = [{"key_id": SAME}, {"key_id": "KEY-99999999"}, {"key_id": generated["key_id"]}]
    got = await import_keys(b, b_pid, batch)
    assert got == {
        "imported": 3,
        "unchanged": 0,
        "refused": 0,
        "results": [{"key_id": e["key_id"], "status": "imported"} for e in batch],
    }
    # Importing again: unchanged, the same for each.
    again = await import_keys(b, b_pid, batch)
    assert [r["status"] for r in again["results"]] == ["unchanged"] * 3
    assert await export(a, a_pid) == a_before  # nothing of A's changed

    # Each works in its own project: the loader check names the project.
    assert (await execute(a, a_pid, SAME, "HW-A"))["code"] == "KEY_VALID"
    assert (await execute(b, b_pid, SAME, "HW-B"))["code"] == "KEY_VALID"  # binds HW-B
    assert (await execute(b, b_pid, SAME, "HW-A"))["code"] == "KEY_HWID_LOCKED"
    assert (await execute(a, a_pid, SAME, "HW-B"))["code"] == "KEY_HWID_LOCKED"
    assert (await execute(b, b_pid, generated["key_id"], "HW-B"))["code"] == "KEY_VALID"
    assert (await execute(a, a_pid, generated["key_id"], "HW-A"))["code"] == "KEY_VALID"
    assert (await a.call("GET", f"{ACTIVE}/{SAME}"))["hwid"] == "HW-A"
    assert (await b.call("GET", f"{ACTIVE}/{SAME}"))["hwid"] == "HW-B"
    assert (await a.call("GET", f"{BUYER}/{SAME}"))["project_id"] == a_pid
    assert (await b.call("GET", f"{BUYER}/{SAME}"))["project_id"] == b_pid


async def _both_hold(api: Api) -> tuple[Api, str, Api, str]:
    """A and B each import SAME (redeemed, with an HWID) and two unredeemed ids."""
    a = api
    b = await a.as_other()
    pids = []
    for vendor, hwid in ((a, "HW-A"), (b, "HW-B")):
        pid = (await vendor.project())["project_id"]
        batch = [
            {"key_id": SAME, "hwid": hwid, "key_days": 1},
            {"key_id": "KEY-00000002", "redeemed": False, "key_days": 1},
            {"key_id": "KEY-00000003", "redeemed": False},
        ]
        assert (await import_keys(vendor, pid, batch))["imported"] == 3
        pids.append(pid)
    return a, pids[0], b, pids[1]


async def test_routes_by_bare_id_act_on_the_callers_key(api: Api) -> None:
    a, a_pid, b, b_pid = await _both_hold(api)

    # Ban and unban, each way round.
    await a.call("POST", f"{ACTIVE}/{SAME}/ban", {"reason": "A's call"})
    assert (await a.call("GET", f"{ACTIVE}/{SAME}"))["banned"] is True
    assert (await b.call("GET", f"{ACTIVE}/{SAME}"))["banned"] is False
    assert (await execute(a, a_pid, SAME, "HW-A"))["code"] == "KEY_BANNED"
    assert (await execute(b, b_pid, SAME, "HW-B"))["code"] == "KEY_VALID"
    await b.call("POST", f"{ACTIVE}/{SAME}/ban")
    await a.call("POST", f"{ACTIVE}/{SAME}/unban")
    assert (await a.call("GET", f"{ACTIVE}/{SAME}"))["banned"] is False
    assert (await b.call("GET", f"{ACTIVE}/{SAME}"))["banned"] is True
    assert (await execute(a, a_pid, SAME, "HW-A"))["code"] == "KEY_VALID"
    assert (await execute(b, b_pid, SAME, "HW-B"))["code"] == "KEY_BANNED"
    await b.call("POST", f"{ACTIVE}/{SAME}/unban")

    # HWID: set and reset.
    await a.call("PATCH", f"{ACTIVE}/{SAME}/hwid", {"new_hwid": "HW-A2"})
    assert (await b.call("GET", f"{ACTIVE}/{SAME}"))["hwid"] == "HW-B"
    await b.call("POST", f"{ACTIVE}/{SAME}/reset_hwid")
    assert (await a.call("GET", f"{ACTIVE}/{SAME}"))["hwid"] == "HW-A2"
    assert (await b.call("GET", f"{ACTIVE}/{SAME}"))["hwid"] is None

    # Notes.
    await a.call("PATCH", f"{ACTIVE}/{SAME}", {"note": "A's note"})
    await b.call("PATCH", f"{BUYER}/KEY-00000002", {"note": "B's note"})
    assert (await a.call("GET", f"{BUYER}/{SAME}"))["note"] == "A's note"
    assert (await b.call("GET", f"{BUYER}/{SAME}")).get("note") is None
    assert (await a.call("GET", f"{BUYER}/KEY-00000002")).get("note") is None

    # Redeem: A's key only.
    await a.redeem("KEY-00000002", discord_id="21")
    assert (await b.call("GET", f"{BUYER}/KEY-00000002"))["redeemed"] is False
    await b.call("GET", f"{ACTIVE}/KEY-00000002", status=404)
    await b.redeem("KEY-00000002", discord_id="22")
    assert (await a.call("GET", f"{ACTIVE}/KEY-00000002"))["discord_id"] == "21"

    # Delete an unredeemed key: B's only.
    await b.call("DELETE", f"{BUYER}/KEY-00000003")
    await b.call("GET", f"{BUYER}/KEY-00000003", status=404)
    assert (await a.call("GET", f"{BUYER}/KEY-00000003"))["redeemed"] is False

    # Deleting B's project leaves A's keys resolving.
    await b.call("DELETE", f"/api/vendor/projects/{b_pid}")
    for key_id in (SAME, "KEY-00000002", "KEY-00000003"):
        assert (await a.call("GET", f"{BUYER}/{key_id}"))["project_id"] == a_pid
        await b.call("GET", f"{BUYER}/{key_id}", status=404)
    assert (await execute(a, a_pid, SAME, "HW-A2"))["code"] == "KEY_VALID"


async def _old_layout(api: Api, key_id: str) -> str:
    """Moves the key's ref to its name before refs were per vendor (``l7:kref:<key_id>``,
    with its TTL), as a store written by an earlier version holds it. Returns that name."""
    redis = api.store.redis
    old = f"l7:kref:{key_id}"
    for name in await keys_matching(redis, f"l7:kref:*{key_id}"):
        if name == old:
            continue
        value = await redis.get(name)
        at = int(await redis.execute_command("PEXPIRETIME", name))
        await redis.delete(name)
        await redis.set(old, value, pxat=at if at > 0 else None)
    return old


async def test_refs_of_the_old_layout_keep_resolving(api: Api) -> None:
    a = api
    a_pid = (await a.project())["project_id"]
    kept, redeemed, deleted = await a.keys(a_pid, amount=3, key_days=1)
    old = {k["key_id"]: await _old_layout(a, k["key_id"]) for k in (kept, redeemed, deleted)}
    for k in (kept, redeemed, deleted):
        assert await a.store.redis.get(old[k["key_id"]]) == a_pid
        assert await keys_matching(a.store.redis, f"l7:kref:*?{k['key_id']}") == []

    # A's routes by bare id find the keys through the old refs.
    assert (await a.call("GET", f"{BUYER}/{kept['key_id']}"))["project_id"] == a_pid
    await a.redeem(redeemed["key_id"], discord_id="31")
    await a.call("POST", f"{ACTIVE}/{redeemed['key_id']}/ban")
    assert (await a.call("GET", f"{ACTIVE}/{redeemed['key_id']}"))["banned"] is True
    # Redeemed: the old ref expires with its key, as a ref does.
    key_at = await a.store.redis.execute_command(
        "PEXPIRETIME", keyspace.key(a_pid, redeemed["key_id"])
    )
    assert int(key_at) > 0
    assert await a.store.redis.execute_command("PEXPIRETIME", old[redeemed["key_id"]]) == key_at
    await a.call("DELETE", f"{BUYER}/{deleted['key_id']}")
    assert await a.store.redis.exists(old[deleted["key_id"]]) == 0
    # Redeemed by its first run: the same, off the check's response path.
    assert (await execute(a, a_pid, kept["key_id"], "HW-K"))["code"] == "KEY_VALID"
    key_at = await a.store.redis.execute_command("PEXPIRETIME", keyspace.key(a_pid, kept["key_id"]))
    for _ in range(200):  # (does not hang: 2 s at most)
        ref_at = await a.store.redis.execute_command("PEXPIRETIME", old[kept["key_id"]])
        if ref_at != -1:
            break
        await asyncio.sleep(0.01)
    assert int(key_at) > 0 and ref_at == key_at

    # Another vendor may hold the same ids; A's old refs stay A's.
    b = await a.as_other()
    b_pid = (await b.project())["project_id"]
    ids = [kept["key_id"], redeemed["key_id"], deleted["key_id"]]
    got = await import_keys(b, b_pid, [{"key_id": i, "redeemed": True} for i in ids])
    assert [r["status"] for r in got["results"]] == ["imported"] * 3
    await b.call("POST", f"{ACTIVE}/{redeemed['key_id']}/ban")
    await b.call("POST", f"{ACTIVE}/{redeemed['key_id']}/unban")
    assert (await b.call("GET", f"{ACTIVE}/{redeemed['key_id']}"))["banned"] is False
    assert (await a.call("GET", f"{ACTIVE}/{redeemed['key_id']}"))["banned"] is True
    await b.call("DELETE", f"/api/vendor/projects/{b_pid}")
    assert await a.store.redis.get(old[kept["key_id"]]) == a_pid
    assert await a.store.redis.get(old[redeemed["key_id"]]) == a_pid
    assert (await a.call("GET", f"{BUYER}/{kept['key_id']}"))["project_id"] == a_pid

    # The same vendor's other project may not take an id its old ref names.
    second = (await a.project(name="second"))["project_id"]
    got = await import_keys(a, second, [{"key_id": kept["key_id"]}])
    assert got["results"] == [
        {
            "key_id": kept["key_id"],
            "status": "refused",
            "detail": "key_id already exists in another of your projects",
        }
    ]
    # Re-importing into its own project changes nothing.
    got = await import_keys(a, a_pid, [{"key_id": kept["key_id"]}])
    assert got["results"] == [{"key_id": kept["key_id"], "status": "unchanged"}]
    # Deleting A's project drops the old refs with the keys.
    await a.call("DELETE", f"/api/vendor/projects/{a_pid}")
    assert await keys_matching(a.store.redis, f"l7:kref:*{kept['key_id']}") == []
    assert await keys_matching(a.store.redis, f"l7:kref:*{redeemed['key_id']}") == []
