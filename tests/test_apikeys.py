"""API keys: keyed hashes with the server secret, and rotation with a grace period."""

import asyncio
import calendar
import dataclasses
import hashlib
import hmac
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from service.app import create_app
from service.config import Settings
from service.secret import load_secret
from store import Store, keyspace
from tests.support.api import Api, ApiWith, Clock, keys_matching, store_of

ROTATE = "/api/vendor/api_key/rotate"
REVOKE = "/api/vendor/api_key/revoke_previous"
UNAUTHENTICATED = {"detail": "Not authenticated"}
NOT_CURRENT = {
    "detail": "This API key has been rotated out: only the current key may rotate or revoke keys"
}


def test_secret_from_env_wins(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, secret="from-env")
    assert load_secret(s) == b"from-env"
    assert not (tmp_path / "secret").exists()


def test_secret_generated_once_with_mode_0600(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "data")
    first = load_secret(s)
    path = tmp_path / "data" / "secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert re.fullmatch(rb"[0-9a-f]{64}", first)
    assert load_secret(s) == first  # reused
    assert load_secret(Settings(data_dir=tmp_path / "other")) != first


def test_secret_env_variable() -> None:
    assert Settings.from_env({"LEAF7_SECRET": "s3"}).secret == "s3"
    assert Settings.from_env({}).secret is None


async def test_api_key_stored_as_hmac(redis_client: Redis) -> None:
    store = Store(redis_client, secret=b"k1")
    vendor_id, api_key = await store.vendors.create("v", None)
    digest = hmac.new(b"k1", api_key.encode(), hashlib.sha256).hexdigest()
    assert await redis_client.get(keyspace.api_key(digest)) == vendor_id
    assert await redis_client.hget(keyspace.vendor(vendor_id), "api_key_hash") == digest
    plain = hashlib.sha256(api_key.encode()).hexdigest()
    assert not [n async for n in redis_client.scan_iter(f"*{plain}*")]
    assert await store.vendors.authenticate(api_key) == vendor_id
    # Another secret cannot verify it (a copy of the database alone is not enough).
    assert await Store(redis_client, secret=b"k2").vendors.authenticate(api_key) is None


async def test_app_restart_reuses_generated_secret(
    aiohttp_client: Any, redis_client: Redis, clock: Clock, settings: Settings
) -> None:
    a = await aiohttp_client(create_app(settings, redis=redis_client, clock=clock))
    api = await Api(a, store_of(a)).login()
    await a.close()
    b = await aiohttp_client(create_app(settings, redis=redis_client, clock=clock))
    resp = await b.get("/api/vendor/projects", headers=api.auth)
    assert resp.status == 200
    # A different data directory means a different secret: the key is unknown there.
    other = dataclasses.replace(settings, data_dir=settings.data_dir.parent / "elsewhere")
    c = await aiohttp_client(create_app(other, redis=redis_client, clock=clock))
    assert (await c.get("/api/vendor/projects", headers=api.auth)).status == 401


async def test_rotate(api: Api, clock: Clock) -> None:
    project = await api.project()
    old = api.auth
    body = await api.call("POST", ROTATE)
    assert set(body) == {"api_key", "previous_key_expires_at"}
    new_key = body["api_key"]
    assert new_key.startswith("l7_") and new_key != api.api_key
    expected = clock() + 86400
    got = body["previous_key_expires_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", got)
    at = calendar.timegm(time.strptime(got, "%Y-%m-%dT%H:%M:%S"))
    assert abs(at - expected) <= 2
    # Both keys work for the same vendor during the grace period.
    for headers in (old, {"Authorization": f"Bearer {new_key}"}):
        resp = await api.client.get("/api/vendor/projects", headers=headers)
        assert resp.status == 200
        assert [p["project_id"] for p in await resp.json()] == [project["project_id"]]
    # The old key's record expires after the grace period; the new one never does.
    old_digest = api.store.vendors.api_key_digest(api.api_key)
    new_digest = api.store.vendors.api_key_digest(new_key)
    assert 86390 <= await api.store.redis.ttl(keyspace.api_key(old_digest)) <= 86400
    assert await api.store.redis.ttl(keyspace.api_key(new_digest)) == -1
    vendor = await api.store.redis.hgetall(keyspace.vendor(api.vendor_id))
    assert vendor["api_key_hash"] == new_digest
    assert new_key not in str(vendor)


async def test_rotate_needs_authentication(api: Api) -> None:
    resp = await api.client.post(ROTATE, headers={"Authorization": "Bearer nope"})
    assert resp.status == 401
    assert await resp.json() == UNAUTHENTICATED
    assert (await api.client.post(ROTATE)).status == 401
    assert (await api.client.get(ROTATE, headers=api.auth)).status == 405


async def test_rotate_with_short_grace_on_real_server(api_with: ApiWith, real_redis: Redis) -> None:
    api = await api_with(real_redis, api_key_grace=1)
    client = api.client
    first = api.auth
    second_key = (await api.call("POST", ROTATE))["api_key"]
    second = {"Authorization": f"Bearer {second_key}"}
    assert (await client.get("/api/vendor/projects", headers=first)).status == 200
    # The old key cannot rotate again (a leaked key must not mint a fresh one).
    resp = await client.post(ROTATE, headers=first)
    assert (resp.status, await resp.json()) == (403, NOT_CURRENT)
    resp = await client.post(ROTATE, headers=second)
    assert resp.status == 200
    third = {"Authorization": f"Bearer {(await resp.json())['api_key']}"}
    for headers in (first, second, third):
        assert (await client.get("/api/vendor/projects", headers=headers)).status == 200
    await asyncio.sleep(2.2)
    for headers in (first, second):
        resp = await client.get("/api/vendor/projects", headers=headers)
        assert resp.status == 401
        assert await resp.json() == UNAUTHENTICATED
    assert (await client.get("/api/vendor/projects", headers=third)).status == 200


async def test_rotate_without_grace_stops_old_key_at_once(
    api_with: ApiWith, redis_client: Redis
) -> None:
    api = await api_with(redis_client, api_key_grace=0)
    client = api.client
    old = api.auth
    body = await api.call("POST", ROTATE)
    assert (await client.get("/api/vendor/projects", headers=old)).status == 401
    new = {"Authorization": f"Bearer {body['api_key']}"}
    assert (await client.get("/api/vendor/projects", headers=new)).status == 200


async def test_concurrent_rotations_by_one_key_make_one_new_key(real_api: Api) -> None:
    api = real_api
    answers = await asyncio.gather(*(api.client.post(ROTATE, headers=api.auth) for _ in range(5)))
    bodies = [(r.status, await r.json()) for r in answers]
    assert sorted(status for status, _ in bodies) == [200, 403, 403, 403, 403], bodies
    [new_key] = [body["api_key"] for status, body in bodies if status == 200]
    current = await api.store.redis.hget(keyspace.vendor(api.vendor_id), "api_key_hash")
    assert current == api.store.vendors.api_key_digest(new_key)
    assert await api.store.redis.ttl(keyspace.api_key(current)) == -1
    # The refused rotations left no key behind; the original is in its grace period.
    assert len(await keys_matching(api.store.redis, "l7:apikey:{*}")) == 2
    original = api.store.vendors.api_key_digest(api.api_key)
    assert await api.store.redis.ttl(keyspace.api_key(original)) > 0


async def test_a_key_in_its_grace_period_cannot_rotate_or_revoke(api: Api) -> None:
    old = api.auth
    new = {"Authorization": f"Bearer {(await api.call('POST', ROTATE))['api_key']}"}
    for path in (ROTATE, REVOKE):
        resp = await api.client.post(path, headers=old)
        assert (resp.status, await resp.json()) == (403, NOT_CURRENT)
    # It still works for everything else until its grace ends.
    assert (await api.client.get("/api/vendor/projects", headers=old)).status == 200
    assert (await api.client.get("/api/vendor/projects", headers=new)).status == 200


async def test_revoke_previous_ends_every_grace_period_now(api: Api) -> None:
    first = api.auth
    second_key = (await api.call("POST", ROTATE))["api_key"]
    second = {"Authorization": f"Bearer {second_key}"}
    resp = await api.client.post(ROTATE, headers=second)
    third = {"Authorization": f"Bearer {(await resp.json())['api_key']}"}
    for headers in (first, second, third):
        assert (await api.client.get("/api/vendor/projects", headers=headers)).status == 200
    resp = await api.client.post(REVOKE, headers=third)
    assert (resp.status, await resp.json()) == (200, {"status": "success"})
    for headers in (first, second):
        resp = await api.client.get("/api/vendor/projects", headers=headers)
        assert (resp.status, await resp.json()) == (401, UNAUTHENTICATED)
    assert (await api.client.get("/api/vendor/projects", headers=third)).status == 200
    # Nothing left to revoke: still a success; the current key keeps working.
    resp = await api.client.post(REVOKE, headers=third)
    assert (resp.status, await resp.json()) == (200, {"status": "success"})
    assert (await api.client.get("/api/vendor/projects", headers=third)).status == 200
    assert (await api.client.post(REVOKE)).status == 401


def test_secret_file_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("a" * 64 + "\n")
    os.chmod(path, 0o600)
    assert load_secret(Settings(data_dir=tmp_path)) == b"a" * 64
    assert path.read_text() == "a" * 64 + "\n"


def test_external_redis_without_secret_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = Settings(data_dir=tmp_path, redis_url="redis://cache:6379/0")
    with caplog.at_level("WARNING", logger="leaf7"):
        first = load_secret(s)
    assert "LEAF7_SECRET is unset" in caplog.text
    assert load_secret(s) == first
    caplog.clear()
    with caplog.at_level("WARNING", logger="leaf7"):
        load_secret(Settings(data_dir=tmp_path, secret="x"))
        load_secret(Settings(data_dir=tmp_path))
    assert caplog.text == ""
