"""Export (``GET /api/vendor/export``) and import (``POST /api/vendor/keys/import``,
``leaf7 vendor import-csv``): the lines of an export, a project restored exactly from its own
export, re-imports that change nothing, ids that exist elsewhere refused, foreign key formats,
invalid entries, imported keys in the loader check, a 5,000-key export streamed."""

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from handlers.appkeys import SETTINGS
from service.csvimport import CSV_COLUMNS
from store import keyspace
from store.models import iso
from tests.support.api import Api, execute, keys_matching
from tests.support.processes import create_vendor, http, leaf7, serving

IMPORT = "/api/vendor/keys/import"
KEY_TYPES = ("buyer_key", "active_key")


async def export(api: Api, project_id: str, status: int = 200) -> Any:
    resp = await api.client.get(f"/api/vendor/export?project_id={project_id}", headers=api.auth)
    if status != 200:
        body = await resp.json()
        assert resp.status == status, body
        return body
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "application/x-ndjson"
    text = await resp.text()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[-1]["type"] == "end"
    return lines


def key_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((x for x in lines if x["type"] in KEY_TYPES), key=lambda x: x["key_id"])


def by_id(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {x["key_id"]: x for x in key_lines(lines)}


async def import_keys(api: Api, project_id: str, keys: list[Any], status: int = 200) -> Any:
    body = {"project_id": project_id, "keys": keys}
    return await api.call("POST", IMPORT, body, status=status)


async def wipe_keys(api: Api, project_id: str, key_ids: list[str], discord_ids: list[str]) -> None:
    """Deletes the project's keys (hashes, refs, indexes, HWID blocks) behind the API's back."""
    names = [keyspace.key(project_id, k) for k in key_ids] + [
        keyspace.key_ref(api.vendor_id, k) for k in key_ids
    ]
    names += [keyspace.discord_index(project_id, d) for d in discord_ids]
    names += [
        keyspace.buyer_index(project_id),
        keyspace.active_index(project_id),
        keyspace.key_discords(project_id),
        keyspace.hwid_bans(project_id),
    ]
    for name in names:  # one by one: on a cluster they live in different slots
        await api.store.redis.delete(name)


async def pexpiretime(api: Api, name: str) -> int:
    return int(await api.store.redis.execute_command("PEXPIRETIME", name))


async def a_project_of_every_kind(api: Api) -> tuple[str, dict[str, str]]:
    """A project with a hosted script, a blacklist entry and keys of every state."""
    pid = (await api.project(description="d", hwid_reset_cooldown=60))["project_id"]
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": "print(1)"})
    made = await api.keys(pid, amount=7, key_days=30, note="sold on 1 May")
    k = {name: key["key_id"] for name, key in zip("abcdefg", made, strict=True)}
    [lifetime] = await api.keys(pid, key_days=0)
    k["lifetime"] = lifetime["key_id"]
    # b, c: redeemed through Discord (c expiring, lifetime: never)
    await api.redeem(k["b"], "555")
    await api.redeem(k["lifetime"], "556")
    # d: redeemed by the loader (a HWID, executions, no Discord id)
    assert (await execute(api, pid, k["d"], "hw-d"))["code"] == "KEY_VALID"
    assert (await execute(api, pid, k["d"], "hw-d"))["code"] == "KEY_VALID"
    # e: banned for good (its HWID blocked in the project)
    await execute(api, pid, k["e"], "hw-e")
    await api.call("POST", f"/api/vendor/keys/active/{k['e']}/ban")
    # f: a vendor HWID reset (hwid_resets, last_reset)
    await execute(api, pid, k["f"], "hw-f")
    await api.call("POST", f"/api/vendor/keys/active/{k['f']}/reset_hwid")
    await api.call("POST", "/api/vendor/blacklist", {"hwid": "hw-listed", "reason": "r"})
    return pid, k


async def test_export_lines(api: Api) -> None:
    pid, k = await a_project_of_every_kind(api)
    lines = await export(api, pid)
    kinds = [x["type"] for x in lines]
    assert kinds[:2] == ["project", "source"]
    assert kinds.count("project") == kinds.count("source") == kinds.count("end") == 1
    project, source, end = lines[0], lines[1], lines[-1]
    assert project["project_id"] == pid and project["description"] == "d"
    assert project["hwid_reset_cooldown"] == 60 and project["version"] == "0.0.1"
    assert source == {"type": "source", "version": "0.0.1", "source": "print(1)"}
    keys = by_id(lines)
    assert set(keys) == set(k.values())
    assert {x["key_id"] for x in keys.values() if x["type"] == "buyer_key"} == {
        k["a"],
        k["c"],
        k["g"],
    }
    assert keys[k["a"]] == {
        "type": "buyer_key",
        "key_id": k["a"],
        "created_at": keys[k["a"]]["created_at"],
        "key_days": 30,
        "key_hours": 0,
        "key_minutes": 0,
        "redeemed": False,
        "note": "sold on 1 May",
        "key_type": "paid",
    }
    b = keys[k["b"]]
    assert b["type"] == "active_key" and b["redeemed"] is True
    assert b["discord_id"] == "555" and b["hwid"] is None and b["expires_at"] is not None
    assert b["redeemed_at"] is not None and b["banned"] is False and b["note"] == "sold on 1 May"
    assert keys[k["lifetime"]]["expires_at"] is None
    assert "note" not in keys[k["lifetime"]]
    d = keys[k["d"]]
    assert d["discord_id"] is None and d["hwid"] == "hw-d" and d["total_executions"] == 2
    assert d["last_execution"] is not None
    e = keys[k["e"]]
    assert e["banned"] is True and e["ban_expires_at"] is None and e["hwid"] == "hw-e"
    f = keys[k["f"]]
    assert f["hwid"] is None and f["hwid_resets"] == 1 and f["last_reset"] is not None
    [listed] = [x for x in lines if x["type"] == "blacklist"]
    assert listed["hwid"] == "hw-listed" and listed["reason"] == "r"
    assert end == {"type": "end", "buyer_keys": 3, "active_keys": 5, "blacklist": 1}
    # The export lines of the active keys are what the active listing says of them.
    for row in await api.call("GET", f"/api/vendor/keys/active?project_id={pid}"):
        line = keys[row["key_id"]]
        for field in ("discord_id", "hwid", "expires_at", "redeemed_at", "total_executions"):
            assert line[field] == row[field], field


async def test_export_of_another_vendors_or_unknown_project_is_404(api: Api) -> None:
    pid = (await api.project())["project_id"]
    other = await api.as_other()
    assert await export(other, pid, 404) == {"detail": "Project not found"}
    unknown = "00000000-0000-4000-8000-000000000000"
    assert await export(api, unknown, 404) == {"detail": "Project not found"}
    assert await export(api, "nope", 404) == {"detail": "Project not found"}
    resp = await api.client.get("/api/vendor/export", headers=api.auth)
    assert resp.status == 422
    assert await resp.json() == {"detail": "project_id: query parameter is required"}


async def test_round_trip_restores_the_project_exactly(api: Api) -> None:
    pid, k = await a_project_of_every_kind(api)
    before = await export(api, pid)
    expiring = keyspace.key(pid, k["b"])
    ttl_key = await pexpiretime(api, expiring)
    ttl_ref = await pexpiretime(api, keyspace.key_ref(api.vendor_id, k["b"]))
    assert ttl_key > 0 and ttl_ref == ttl_key
    blocks = await api.store.redis.hgetall(keyspace.hwid_bans(pid))
    assert blocks == {"hw-e": "1"}

    await wipe_keys(api, pid, list(k.values()), ["555", "556"])
    wiped = await export(api, pid)
    assert key_lines(wiped) == [] and wiped[-1]["buyer_keys"] == 0
    assert (await execute(api, pid, k["d"], "hw-d"))["code"] == "KEY_INCORRECT"

    summary = await import_keys(api, pid, key_lines(before))
    assert summary["imported"] == len(k) and summary["unchanged"] == summary["refused"] == 0
    assert {r["status"] for r in summary["results"]} == {"imported"}
    after = await export(api, pid)
    assert sorted(map(json.dumps, after)) == sorted(map(json.dumps, before))
    # What is not in the lines is restored too: TTLs (key and ref), the HWID block, indexes.
    assert await pexpiretime(api, expiring) == ttl_key
    assert await pexpiretime(api, keyspace.key_ref(api.vendor_id, k["b"])) == ttl_ref
    assert await pexpiretime(api, keyspace.key(pid, k["lifetime"])) == -1
    assert await api.store.redis.hgetall(keyspace.hwid_bans(pid)) == blocks
    mine = await api.call("GET", f"/api/vendor/users/555/keys?project_id={pid}")
    assert [x["key_id"] for x in mine] == [k["b"]]
    assert (await execute(api, pid, k["d"], "hw-d"))["code"] == "KEY_VALID"
    assert (await execute(api, pid, k["e"], "hw-e"))["code"] == "KEY_BANNED"
    assert (await execute(api, pid, k["c"], "hw-e"))["code"] == "HWID_BANNED"  # still blocked


async def test_reimport_changes_nothing(api: Api) -> None:
    pid = (await api.project())["project_id"]
    batch = [
        {"key_id": "old-system-0001", "note": "n"},
        {"key_id": "old-system-0002", "discord_id": "42", "key_days": 3},
        {"key_id": "old-system-0003", "hwid": "hw3", "expires_at": "2031-01-01T00:00:00Z"},
    ]
    first = await import_keys(api, pid, batch)
    assert (first["imported"], first["unchanged"], first["refused"]) == (3, 0, 0)
    state = await export(api, pid)
    # Meanwhile the buyer uses a key: importing again must not undo it.
    assert (await execute(api, pid, "old-system-0003", "hw3"))["code"] == "KEY_VALID"
    used = by_id(await export(api, pid))["old-system-0003"]
    again = await import_keys(api, pid, batch)
    assert (again["imported"], again["unchanged"], again["refused"]) == (0, 3, 0)
    assert again["results"] == [{"key_id": e["key_id"], "status": "unchanged"} for e in batch]
    now = await export(api, pid)
    assert by_id(now)["old-system-0003"] == used
    for x in ("old-system-0001", "old-system-0002"):
        assert by_id(now)[x] == by_id(state)[x]
    events = await api.call("GET", "/api/vendor/metrics/events?limit=100")
    assert [e["message"] for e in events if "imported" in e["message"]] == ["3 keys imported"]
    # A batch of new and known keys: only the new ones are imported.
    mixed = await import_keys(api, pid, [*batch, {"key_id": "old-system-0004"}])
    assert (mixed["imported"], mixed["unchanged"]) == (1, 3)
    assert mixed["results"][-1] == {"key_id": "old-system-0004", "status": "imported"}


async def test_an_id_in_another_of_your_projects_is_refused(api: Api) -> None:
    mine = (await api.project())["project_id"]
    [in_mine] = await api.keys(mine)
    target = (await api.project(name="second"))["project_id"]
    batch = [
        {"key_id": in_mine["key_id"], "note": "overwrite?"},
        {"key_id": "brand-new-key"},
    ]
    summary = await import_keys(api, target, batch)
    assert (summary["imported"], summary["unchanged"], summary["refused"]) == (1, 0, 1)
    refused = "key_id already exists in another of your projects"
    assert summary["results"] == [
        {"key_id": in_mine["key_id"], "status": "refused", "detail": refused},
        {"key_id": "brand-new-key", "status": "imported"},
    ]
    # Nothing of the other project changed; the refs still point home.
    assert "note" not in await api.call("GET", f"/api/vendor/keys/buyer/{in_mine['key_id']}")
    assert await api.store.redis.get(keyspace.key_ref(api.vendor_id, in_mine["key_id"])) == mine
    assert await api.store.redis.get(keyspace.key_ref(api.vendor_id, "brand-new-key")) == target
    assert [x["key_id"] for x in key_lines(await export(api, target))] == ["brand-new-key"]
    # The other way round too: the id just imported is not the first project's to take.
    summary = await import_keys(api, mine, [{"key_id": "brand-new-key"}])
    assert summary["results"] == [
        {"key_id": "brand-new-key", "status": "refused", "detail": refused}
    ]
    # (Another vendor's ids are none of an import's business: tests/test_key_privacy.py.)


async def test_foreign_formats_work_everywhere(api: Api) -> None:
    pid = (await api.project())["project_id"]
    ids = ["AB-12_cd", "x" * 64, "LEGACY-KEY-0000-0001", "__--__--", "a_b"]
    summary = await import_keys(api, pid, [{"key_id": i, "hwid": "hw-" + i} for i in ids[:4]])
    assert summary["imported"] == 4
    for key_id in ids[:4]:
        base = f"/api/vendor/keys/active/{key_id}"
        assert (await api.call("GET", base))["hwid"] == "hw-" + key_id
        assert (await api.call("GET", f"/api/vendor/keys/buyer/{key_id}"))["redeemed"] is True
        await api.call("PATCH", base + "/hwid", {"new_hwid": "h2"})
        await api.call("POST", base + "/ban")
        await api.call("POST", base + "/unban")
        await api.call("POST", base + "/reset_hwid")
        assert (await execute(api, pid, key_id, "h3"))["code"] == "KEY_VALID"
    # Paging over them hands each out once (the cursor carries such ids).
    seen: list[str] = []
    cursor = ""
    while True:
        query = f"?project_id={pid}&limit=1" + (f"&cursor={cursor}" if cursor else "")
        resp = await api.client.get("/api/vendor/keys/active" + query, headers=api.auth)
        assert resp.status == 200, await resp.text()
        seen += [x["key_id"] for x in await resp.json()]
        cursor = resp.headers.get("X-Next-Cursor", "")
        if not cursor:
            break
    assert sorted(seen) == sorted(ids[:4])
    # Shorter than 8 characters: not an import's key id (422, nothing written).
    body = await import_keys(api, pid, [{"key_id": ids[4]}], status=422)
    assert "keys[0].key_id" in body["detail"]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"key_id": "short7c"}, "keys[0].key_id"),
        ({"key_id": "x" * 65}, "keys[0].key_id"),
        ({"key_id": "has.a.dot"}, "keys[0].key_id"),
        ({"key_id": "has a space"}, "keys[0].key_id"),
        ({"key_id": "åäöåäöåäö"}, "keys[0].key_id"),
        ({"key_id": "12345678", "expires_at": "2030-01-01T00:00:00", "key_days": 1}, "expires_at"),
        (
            {"key_id": "12345678", "expires_at": "2030-01-01T00:00:00", "key_minutes": 5},
            "expires_at",
        ),
        ({"key_id": "12345678", "redeemed": False, "discord_id": "5"}, "discord_id"),
        ({"key_id": "12345678", "redeemed": False, "banned": True}, "banned"),
        ({"key_id": "12345678", "hwid": "h", "ban_reason": "r"}, "ban_reason"),
        ({"key_id": "12345678", "expires_at": "1969-12-31T23:59:59"}, "expires_at"),
        ({"key_id": "12345678", "expires_at": "tomorrow"}, "keys[0].expires_at"),
        ({"key_id": "12345678", "discord_id": "abc"}, "keys[0].discord_id"),
        ({"key_id": "12345678", "key_days": -1}, "keys[0].key_days"),
        ({"key_id": "12345678", "total_executions": -1}, "keys[0].total_executions"),
    ],
)
async def test_invalid_entries_are_422(api: Api, entry: dict[str, Any], field: str) -> None:
    pid = (await api.project())["project_id"]
    good = {"key_id": "a-good-key-1"}
    body = await import_keys(api, pid, [good, entry], status=422)
    assert field.replace("keys[0]", "keys[1]") in body["detail"], body
    assert key_lines(await export(api, pid)) == []  # nothing written, not even the good one
    assert await api.store.redis.get(keyspace.key_ref(api.vendor_id, "a-good-key-1")) is None


async def test_batch_limits_are_422(api: Api) -> None:
    pid = (await api.project())["project_id"]
    many = [{"key_id": f"key-{i:08d}"} for i in range(1001)]
    body = await import_keys(api, pid, many, status=422)
    assert "keys" in body["detail"], body
    twice = [{"key_id": "same-key-1"}, {"key_id": "other-key"}, {"key_id": "same-key-1"}]
    body = await import_keys(api, pid, twice, status=422)
    assert body == {"detail": "keys[2].key_id: the same key as keys[0]"}
    assert key_lines(await export(api, pid)) == []
    # 1000 is allowed (a body larger than LEAF7_MAX_BODY, 64 KiB here: an import may take
    # 4 MiB), and an empty batch is a no-op.
    big = [{**e, "note": "n" * 255} for e in many[:1000]]
    assert len(json.dumps(big)) > 4 * api.client.app[SETTINGS].max_body
    summary = await import_keys(api, pid, big)
    assert summary["imported"] == 1000
    too_large = io.BytesIO(b" " * (4 * 1024 * 1024 + 1))
    resp = await api.client.post(IMPORT, data=too_large, headers=api.auth)
    assert resp.status == 400
    assert await resp.json() == {"detail": "body: request body too large (limit 4194304 bytes)"}
    assert await import_keys(api, pid, []) == {
        "imported": 0,
        "unchanged": 0,
        "refused": 0,
        "results": [],
    }
    other = await api.as_other()
    await import_keys(other, pid, [{"key_id": "not-yours-1"}], status=404)
    assert await api.store.redis.get(keyspace.key_ref(other.vendor_id, "not-yours-1")) is None


async def test_imported_keys_in_the_loader_check(api: Api) -> None:
    pid = (await api.project())["project_id"]
    summary = await import_keys(
        api,
        pid,
        [
            {"key_id": "with-hwid-001", "hwid": "PC-1", "discord_id": "77"},
            {"key_id": "unredeemed-01", "key_hours": 2},
            {"key_id": "discord-only", "redeemed": True, "discord_id": "78"},
            {
                "key_id": "banned-key-01",
                "hwid": "PC-BAD",
                "banned": True,
                "ban_reason": "chargeback",
            },
            {
                "key_id": "timed-ban-01",
                "hwid": "PC-T",
                "banned": True,
                "ban_expires_at": "2999-01-01T00:00:00",
            },
        ],
    )
    assert summary["imported"] == 5
    assert (await execute(api, pid, "with-hwid-001", "PC-1"))["code"] == "KEY_VALID"
    assert (await execute(api, pid, "with-hwid-001", "PC-2"))["code"] == "KEY_HWID_LOCKED"
    assert (await execute(api, pid, "banned-key-01", "PC-BAD"))["code"] == "KEY_BANNED"
    # The permanent ban blocked its HWID project-wide, as a ban here does; a timed one not.
    assert (await execute(api, pid, "discord-only", "PC-BAD"))["code"] == "HWID_BANNED"
    assert (await execute(api, pid, "timed-ban-01", "PC-T"))["code"] == "KEY_BANNED"
    # A key imported with a Discord id but no HWID binds the first one that runs it.
    assert (await execute(api, pid, "discord-only", "PC-3"))["code"] == "KEY_VALID"
    assert (await execute(api, pid, "discord-only", "PC-4"))["code"] == "KEY_HWID_LOCKED"
    # An unredeemed import is redeemed by its first run: its clock starts then.
    ran = await execute(api, pid, "unredeemed-01", "PC-5")
    assert ran["code"] == "KEY_VALID" and 7190 <= ran["key"]["seconds_left"] <= 7200
    # Unbanning lifts the HWID block that the import made.
    await api.call("POST", "/api/vendor/keys/active/banned-key-01/unban")
    assert (await execute(api, pid, "banned-key-01", "PC-BAD"))["code"] == "KEY_VALID"
    lines = by_id(await export(api, pid))
    assert lines["timed-ban-01"]["ban_expires_at"] == "2999-01-01T00:00:00"
    assert lines["with-hwid-001"]["discord_id"] == "77"
    users = await api.call("GET", f"/api/vendor/users/77/keys?project_id={pid}")
    assert [x["key_id"] for x in users] == ["with-hwid-001"]


async def test_expiry_of_imported_keys(api: Api) -> None:
    clock_now = api.store.now()
    pid = (await api.project())["project_id"]
    retention = api.store.core.retention
    summary = await import_keys(
        api,
        pid,
        [
            {"key_id": "absolute-01", "expires_at": "2040-06-01T12:00:00Z"},
            {"key_id": "offset-0001", "expires_at": "2040-06-01T14:00:00+02:00"},
            {"key_id": "relative-01", "redeemed": True, "key_days": 1, "key_minutes": 1},
            {"key_id": "lifetime-01", "redeemed": True},
            {"key_id": "just-expired", "expires_at": "2000-01-01T00:00:00", "hwid": "x"},
        ],
    )
    # Expired longer ago than the retention: it would be gone at once, so it is refused.
    assert summary["results"][-1]["status"] == "refused"
    assert "retention" in summary["results"][-1]["detail"]
    assert summary["imported"] == 4
    assert await api.store.redis.get(keyspace.key_ref(api.vendor_id, "just-expired")) is None
    lines = by_id(await export(api, pid))
    assert lines["absolute-01"]["expires_at"] == "2040-06-01T12:00:00"
    assert lines["offset-0001"]["expires_at"] == "2040-06-01T12:00:00"
    expected = 2222164800 + retention  # 2040-06-01T12:00:00Z
    for key_id in ("absolute-01", "offset-0001"):
        assert await pexpiretime(api, keyspace.key(pid, key_id)) == expected * 1000
        assert await pexpiretime(api, keyspace.key_ref(api.vendor_id, key_id)) == expected * 1000
    rel = await api.call("GET", "/api/vendor/keys/active/relative-01")
    end = clock_now + 86400 + 60
    assert rel["expires_at"] is not None
    at = await pexpiretime(api, keyspace.key(pid, "relative-01")) // 1000 - retention
    assert end <= at <= end + 5
    assert lines["lifetime-01"]["expires_at"] is None
    assert await pexpiretime(api, keyspace.key(pid, "lifetime-01")) == -1
    assert await pexpiretime(api, keyspace.key_ref(api.vendor_id, "lifetime-01")) == -1
    # Expired within the retention: stored as expired (a restore of such a key).
    recent = api.store.now() - 60
    summary = await import_keys(
        api, pid, [{"key_id": "recently-expired", "expires_at": iso(recent)}]
    )
    assert summary["imported"] == 1
    assert (await execute(api, pid, "recently-expired", "h"))["code"] == "KEY_EXPIRED"


async def test_refs_are_dropped_when_the_write_fails(api: Api, monkeypatch: Any) -> None:
    other = await api.as_other()
    theirs = (await other.project())["project_id"]

    # Past the early ownership check, the script itself refuses the foreign project.
    async def owned(vendor_id: str, project_id: str) -> None:
        return None

    monkeypatch.setattr(api.store.projects, "get", owned)
    await import_keys(api, theirs, [{"key_id": "sneaky-key-1"}], status=404)
    assert await api.store.redis.get(keyspace.key_ref(api.vendor_id, "sneaky-key-1")) is None
    assert await keys_matching(api.store.redis, f"*{theirs}*:key:*") == []


@pytest.mark.slow
async def test_a_5000_key_export_is_streamed_and_complete(real_api: Api) -> None:
    api = real_api
    pid = (await api.project())["project_id"]
    made: set[str] = set()
    for _ in range(5):
        made |= {k["key_id"] for k in await api.keys(pid, amount=1000)}
    resp = await api.client.get(f"/api/vendor/export?project_id={pid}", headers=api.auth)
    assert resp.status == 200
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    chunks = 0
    data = b""
    async for chunk in resp.content.iter_any():
        chunks += 1
        data += chunk
    lines = [json.loads(line) for line in data.splitlines()]
    assert {x["key_id"] for x in lines if x["type"] == "buyer_key"} == made
    assert len(lines) == 2 + 5000 + 1
    assert lines[-1] == {"type": "end", "buyer_keys": 5000, "active_keys": 0, "blacklist": 0}
    assert chunks > 1


def test_import_csv_on_a_real_leaf7(data_dir: Path, tmp_path: Path) -> None:
    vendor = create_vendor(data_dir, "Importer", "123")
    with serving(data_dir) as server:
        status, project = http(
            "POST", server.base + "/api/vendor/projects", {"name": "Hub"}, vendor["api_key"]
        )
        assert status == 201, project
        pid = project["project_id"]
        path = tmp_path / "keys.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)  # every column, in the documented order
            for i in range(2400):  # three batches
                w.writerow([f"csv-key-{i:06d}", "", "", "", "7", "", "", f"row {i}", "", ""])
            w.writerow(
                [
                    "csv-active-1",
                    "99",
                    "PC-9",
                    "2040-01-01T00:00:00",
                    "",
                    "",
                    "",
                    "",
                    "false",
                    "true",
                ]
            )
            w.writerow(["bad", "", "", "", "", "", "", "", "", ""])  # line 2403: too short
            w.writerow(["csv-both-1", "", "", "2040-01-01T00:00:00", "3", "", "", "", "", ""])
            w.writerow(["csv-flag-1", "", "", "", "", "", "", "", "maybe", ""])
            w.writerow(["csv-key-002300", "", "", "", "", "", "", "", "", ""])  # line 2406
            # The same key in another batch of 1000 rows: in the project already by then.
            w.writerow(["csv-key-000001", "", "", "", "", "", "", "", "", ""])
        proc = leaf7(data_dir, "vendor", "import-csv", vendor["vendor_id"], pid, str(path))
        assert proc.returncode == 1, (proc.stdout, proc.stderr)  # bad rows: status 1
        out = json.loads(proc.stdout)
        assert out["rows"] == 2406
        assert (out["imported"], out["unchanged"], out["refused"], out["bad_rows"]) == (
            2401,
            1,
            0,
            4,
        )
        errors = {e["line"]: e for e in out["errors"]}
        assert set(errors) == {2403, 2404, 2405, 2406}
        assert "key_id" in errors[2403]["detail"]
        assert "not both" in errors[2404]["detail"]
        assert "banned" in errors[2405]["detail"]
        assert errors[2406]["detail"] == "key_id: the same key as line 2302"
        # Again: nothing new (and the loader sees the imported keys through the server).
        again = leaf7(data_dir, "vendor", "import-csv", vendor["vendor_id"], pid, str(path))
        out = json.loads(again.stdout)
        assert (out["imported"], out["unchanged"], out["bad_rows"]) == (0, 2402, 4)
        status, verdict = http(
            "POST",
            server.base + "/api/loader/execute",
            {"project_id": pid, "script_key": "csv-active-1", "hwid": "PC-9"},
        )
        assert (status, verdict["code"]) == (200, "KEY_VALID")
        status, key = http(
            "GET", server.base + "/api/vendor/keys/buyer/csv-key-000007", None, vendor["api_key"]
        )
        assert status == 200 and key["key_days"] == 7 and key["note"] == "row 7"
        # A foreign project, or a header with an unknown column.
        proc = leaf7(data_dir, "vendor", "import-csv", vendor["vendor_id"], "0" * 36, str(path))
        assert proc.returncode == 1 and "no project" in proc.stderr
        path.write_text("key_id,colour\nabcdefgh,red\n")
        proc = leaf7(data_dir, "vendor", "import-csv", vendor["vendor_id"], pid, str(path))
        assert proc.returncode == 2 and "colour" in proc.stderr
