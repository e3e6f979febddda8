"""Watermarked serving and leak identification over HTTP: the `watermark` project setting,
the copies the loader check serves, and POST /api/vendor/leaks/identify."""

import io
from pathlib import Path
from typing import Any

from handlers import signing
from store import keyspace
from tests.support.api import Api, execute

CORPUS = sorted((Path(__file__).resolve().parent / "lua" / "corpus").glob("*.lua"))
SOURCE = "".join(f"do\n{p.read_text()}\nend\n" for p in CORPUS)
IDENTIFY = "/api/vendor/leaks/identify"
NOT_FOUND = {"detail": "No watermark of yours found"}


async def identify(api: Api, text: str, status: int = 200, raw: bool = True) -> Any:
    if raw:
        resp = await api.client.post(
            IDENTIFY, data=text.encode(), headers={**api.auth, "Content-Type": "text/plain"}
        )
    else:
        resp = await api.client.post(IDENTIFY, json=text, headers=api.auth)
    body = await resp.json()
    assert resp.status == status, body
    return body


async def marked_project(api: Api, n_keys: int = 3, **fields: Any) -> tuple[str, list[str]]:
    project = await api.project(watermark=True, **fields)
    assert project["watermark"] is True
    pid = project["project_id"]
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": SOURCE})
    keys = [k["key_id"] for k in await api.keys(pid, amount=n_keys)]
    return pid, keys


def source_of(script: str) -> str:
    """The served script without the L7_* prelude (its `local L7_...` lines)."""
    lines = script.splitlines(keepends=True)
    while lines and lines[0].startswith("local L7_"):
        lines.pop(0)
    return "".join(lines)


async def test_each_key_gets_its_own_copy_and_a_leak_names_it(api: Api) -> None:
    pid, keys = await marked_project(api)
    copies = {}
    for i, key in enumerate(keys):
        verdict = await execute(api, pid, key, hwid=f"hwid-{i}")
        assert verdict["valid"] is True
        copies[key] = verdict["script"]
        assert source_of(verdict["script"]) != SOURCE
        # The same key gets the same copy on every run.
        assert (await execute(api, pid, key, hwid=f"hwid-{i}"))["script"] == copies[key]
    assert len(set(copies.values())) == len(keys)
    for i, key in enumerate(keys):
        half = source_of(copies[key])[: len(SOURCE) // 2]
        found = await identify(api, half)
        assert found["key_id"] == key and found["project_id"] == pid
        assert found["hwid"] == f"hwid-{i}" and found["discord_id"] is None
        assert found["confidence"] == 1.0 and found["false_match"] < 1e-6
        assert 20 <= found["observed_bits"] <= 64
    # A JSON string body too.
    assert (await identify(api, copies[keys[0]], raw=False))["key_id"] == keys[0]
    # Each identification is an event on the project.
    events = await api.store.core.call("XRANGE", keyspace.events(pid), "-", "+")
    leaks = [dict(zip(f[::2], f[1::2], strict=True)) for _, f in events]
    leaks = [e for e in leaks if e["kind"] == "LEAK"]
    assert [e["key_id"] for e in leaks] == [*keys, keys[0]]


async def test_unmarked_texts_and_other_vendors_are_404(api: Api) -> None:
    pid, keys = await marked_project(api)
    copy = (await execute(api, pid, keys[0]))["script"]
    assert await identify(api, SOURCE, status=404) == NOT_FOUND
    assert await identify(api, "", status=404) == NOT_FOUND
    other = await api.as_other()
    assert await identify(other, copy, status=404) == NOT_FOUND
    # Another vendor's own marked project does not make it theirs either.
    opid, okeys = await marked_project(other)
    assert (await execute(other, opid, okeys[0]))["valid"]
    assert await identify(other, copy, status=404) == NOT_FOUND
    assert (await identify(api, copy))["key_id"] == keys[0]


async def test_off_by_default_and_turned_on_for_the_current_source(api: Api) -> None:
    project = await api.project()
    assert project["watermark"] is False
    pid = project["project_id"]
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": SOURCE})
    [key] = [k["key_id"] for k in await api.keys(pid)]
    plain = await execute(api, pid, key)
    assert source_of(plain["script"]) == SOURCE
    assert await identify(api, plain["script"], status=404) == NOT_FOUND
    updated = await api.call("PATCH", f"/api/vendor/projects/{pid}", {"watermark": True})
    assert updated["watermark"] is True
    marked = (await execute(api, pid, key))["script"]
    assert source_of(marked) != SOURCE
    assert (await identify(api, marked))["key_id"] == key
    # A new upload is marked with its own plan; turned off, copies are plain again.
    new_source = SOURCE + "-- version 2\n"
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": new_source})
    copy = (await execute(api, pid, key))["script"]
    assert copy.endswith("-- version 2\n") and source_of(copy) != new_source
    assert (await identify(api, copy))["key_id"] == key
    await api.call("PATCH", f"/api/vendor/projects/{pid}", {"watermark": False, "name": "X"})
    assert source_of((await execute(api, pid, key))["script"]) == new_source


async def test_a_signed_verdict_signs_the_marked_copy(api: Api) -> None:
    pid, keys = await marked_project(api, n_keys=1)
    body = {"project_id": pid, "script_key": keys[0], "hwid": "h", "nonce": "ab" * 16}
    resp = await api.client.post("/api/loader/execute", json=body)
    verdict = await resp.json()
    sig = verdict["signature"]
    script = verdict["script"].encode()
    prelude, source = script[: sig["split"]], script[sig["split"] :]
    assert source.decode() != SOURCE
    # The chunk hash is of the marked copy (handlers/signing.py's hashes).
    assert sig["chunk"] == signing.chunk_hash(signing.digest(prelude), signing.digest(source)).hex()


async def test_bad_bodies(api: Api) -> None:
    resp = await api.client.post(
        IDENTIFY, data=b"{not json", headers={**api.auth, "Content-Type": "application/json"}
    )
    assert resp.status == 400 and "detail" in await resp.json()
    resp = await api.client.post(IDENTIFY, json={"text": "x"}, headers=api.auth)
    assert resp.status == 422 and "detail" in await resp.json()
    big = io.BytesIO(b"x" * (4 * 1024 * 1024 + 1))
    resp = await api.client.post(IDENTIFY, data=big, headers=api.auth)
    assert resp.status == 400 and "detail" in await resp.json()
    resp = await api.client.post(IDENTIFY, data=b"print(1)")
    assert resp.status == 401
