"""The automatic pipeline, against fakeredis and a real Valkey (``redis_client``)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from store import Store
from store.autopipe import AutoPipeline
from store.scripts import Scripts


@pytest.fixture(autouse=True)
async def _close_pipelines(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Every pipeline a test opens is closed after it (its connection is not a task the
    event loop would cancel at the end: the transport delivers replies itself)."""
    opened: list[AutoPipeline] = []
    init = AutoPipeline.__init__

    def tracked(self: AutoPipeline, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(AutoPipeline, "__init__", tracked)
    yield
    for pipe in opened:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pipe.close(), 5)


async def test_same_tick_is_one_batch(redis_client: Redis) -> None:
    pipe = AutoPipeline(redis_client)
    results = await asyncio.wait_for(
        asyncio.gather(*(pipe.call("INCR", "x") for _ in range(100))), 5
    )
    assert sorted(results) == list(range(1, 101))
    # One batch, in the order the callers queued: caller i gets the i-th increment.
    assert results == list(range(1, 101))
    assert pipe.commands == 100
    assert 1 <= pipe.batches <= 2
    assert await redis_client.get("x") == "100"


async def test_separate_ticks_are_separate_batches(redis_client: Redis) -> None:
    pipe = AutoPipeline(redis_client)
    assert await pipe.call("INCR", "x") == 1
    assert await pipe.call("INCR", "x") == 2
    assert (pipe.batches, pipe.commands) == (2, 2)


async def test_max_batch_splits_a_tick_into_writes(redis_client: Redis) -> None:
    pipe = AutoPipeline(redis_client, max_batch=3)
    assert await pipe.call("PING") == "PONG"  # connected: later writes go out as queued
    before = (pipe.batches, pipe.commands)
    futs = [pipe.call("INCR", "x") for _ in range(10)]
    assert pipe.batches - before[0] == 3  # three full writes left during the tick itself
    results = await asyncio.wait_for(asyncio.gather(*futs), 5)
    assert results == list(range(1, 11))  # in order, across writes
    assert (pipe.batches - before[0], pipe.commands - before[1]) == (4, 10)  # + the remainder
    with pytest.raises(ValueError):
        AutoPipeline(redis_client, max_batch=0)


async def test_flush_writes_what_is_queued_at_once(redis_client: Redis) -> None:
    """A command sent with ``flush`` (a full batch of loader checks) leaves now, with what was
    queued before it, in order."""
    pipe = AutoPipeline(redis_client, max_batch=100)
    assert await pipe.call("PING") == "PONG"
    before = pipe.batches
    first = pipe.call("INCR", "x")
    second = pipe.command(("INCR", "x"), flush=True)
    assert pipe.batches - before == 1  # both written during the tick
    third = pipe.call("INCR", "x")
    assert await asyncio.wait_for(asyncio.gather(first, second, third), 5) == [1, 2, 3]
    assert pipe.batches - before == 2  # the third at the tick's end


async def test_error_fails_only_its_own_future(redis_client: Redis) -> None:
    await redis_client.hset("a-hash-key", "f", "v")
    pipe = AutoPipeline(redis_client)
    futs = [
        pipe.call("INCR", "x"),
        pipe.call("INCR", "a-hash-key"),
        pipe.call("INCR", "x"),
        pipe.call("HGET", "a-hash-key", "f"),
    ]
    results = await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True), 5)
    assert pipe.batches == 1
    assert results[0] == 1
    assert isinstance(results[1], ResponseError)
    assert "WRONGTYPE" in str(results[1])
    assert results[2] == 2
    assert results[3] == "v"


async def test_error_alone_in_its_batch(redis_client: Redis) -> None:
    await redis_client.hset("a-hash-key", "f", "v")
    pipe = AutoPipeline(redis_client)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await pipe.call("INCR", "a-hash-key")
    assert pipe.batches == 1


async def test_each_caller_gets_its_own_reply(redis_client: Redis) -> None:
    pipe = AutoPipeline(redis_client, max_batch=1000)
    n = 50
    await asyncio.gather(*(pipe.call("SET", f"k{i}", f"v{i}") for i in range(n)))

    async def caller(i: int) -> tuple[int, str, int]:
        value = await pipe.call("GET", f"k{i}")
        length = await pipe.call("STRLEN", f"k{i}")
        return i, value, length

    before = pipe.batches
    results = await asyncio.gather(*(caller(i) for i in range(n - 1, -1, -1)))
    assert results == [(i, f"v{i}", len(f"v{i}")) for i in range(n - 1, -1, -1)]
    assert pipe.batches - before <= 4  # all GETs share a batch, then all STRLENs


async def test_cancelled_caller_does_not_disturb_others(redis_client: Redis) -> None:
    pipe = AutoPipeline(redis_client)
    futs = [pipe.call("INCR", "x") for _ in range(3)]
    futs[1].cancel()
    results = await asyncio.gather(futs[0], futs[2])
    assert list(results) == [1, 3]  # the cancelled caller's command still ran
    assert await redis_client.get("x") == "3"


async def test_drain_waits_for_in_flight_batches(redis_client: Redis) -> None:
    pipe = AutoPipeline(redis_client)
    futs = [pipe.call("INCR", "x") for _ in range(10)]
    assert not any(f.done() for f in futs)
    await asyncio.wait_for(pipe.drain(), 5)
    assert all(f.done() for f in futs)
    assert [f.result() for f in futs] == list(range(1, 11))
    # Nothing left in flight; draining an idle pipeline returns at once.
    await asyncio.wait_for(pipe.drain(), 1)


def _broken(kind: str, tmp_path: Path) -> Redis:
    # No retries: the failure must reach the callers, not be hidden by backoff.
    retry = Retry(NoBackoff(), 0)
    if kind == "unix":
        return Redis(unix_socket_path=str(tmp_path / "missing.sock"), retry=retry)
    return Redis(host="127.0.0.1", port=1, socket_connect_timeout=2, retry=retry)


@pytest.mark.parametrize("kind", ["unix", "tcp"])
@pytest.mark.parametrize("size", [1, 20])
async def test_broken_connection_fails_every_future(kind: str, size: int, tmp_path: Path) -> None:
    client = _broken(kind, tmp_path)
    try:
        pipe = AutoPipeline(client)
        futs = [pipe.call("INCR", "x") for _ in range(size)]
        results = await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True), 5)
        assert len(results) == size
        assert all(isinstance(r, RedisConnectionError) for r in results), results
        assert pipe.batches == 0  # never connected: nothing was written
        await asyncio.wait_for(pipe.drain(), 5)
        # The pipeline keeps working for later callers (they fail the same way, promptly).
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(pipe.call("PING"), 5)
    finally:
        await client.aclose()


async def test_broken_connection_default_retry_does_not_hang(tmp_path: Path) -> None:
    """With redis-py's default retry policy the error still arrives (after the retries)."""
    client = Redis(unix_socket_path=str(tmp_path / "missing.sock"))
    try:
        pipe = AutoPipeline(client)
        futs = [pipe.call("INCR", "x") for _ in range(5)]
        results = await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True), 15)
        assert all(isinstance(r, RedisConnectionError) for r in results), results
    finally:
        await client.aclose()


async def test_store_recovers_from_noscript(redis_client: Redis) -> None:
    """A flushed script cache (or a restarted server) costs one EVAL, never a failed call."""
    store = Store(redis_client)
    await store.core.load_scripts()
    vendor_id, _ = await store.vendors.create("v", "1")
    project = await store.projects.create(vendor_id, {"name": "Hub"})
    pid = project.project_id

    await redis_client.script_flush()
    keys = await store.licences.generate(
        vendor_id, pid, amount=2, key_days=1, key_hours=0, key_minutes=0, note="n"
    )
    assert len(keys) == 2
    assert len(await store.licences.list_buyer(vendor_id, pid)) == 2

    await redis_client.script_flush()
    await store.projects.set_source(vendor_id, pid, "print('hi')", "1.0.0", "")

    await redis_client.script_flush()
    res = await store.checks.execute(pid, keys[0].key_id, "hwid-1")
    assert res.code == "KEY_VALID", res
    assert res.hosted is not None and res.hosted.source == "print('hi')"

    # Several scripts in one batch after a flush: each caller recovers on its own.
    await redis_client.script_flush()
    results = await asyncio.gather(
        store.checks.execute(pid, keys[0].key_id, "hwid-1"),
        store.checks.execute(pid, keys[1].key_id, "hwid-2"),
        store.checks.execute(pid, "no-such-key", "hwid-3"),
    )
    assert [r.code for r in results] == ["KEY_VALID", "KEY_VALID", "KEY_INCORRECT"]

    await redis_client.script_flush()
    assert len(await store.licences.list_active(vendor_id, pid, None)) == 2


async def test_script_flush_really_empties_the_cache(redis_client: Redis) -> None:
    """Guards the test above: after SCRIPT FLUSH, EVALSHA really is NOSCRIPT."""
    scripts = Scripts()
    script = scripts.all()[0]
    await redis_client.script_load(script.source)
    assert (await redis_client.script_exists(script.sha)) == [True]
    await redis_client.script_flush()
    assert (await redis_client.script_exists(script.sha)) == [False]


async def test_reconnects_after_the_server_drops_the_connection(real_redis: Redis) -> None:
    pipe = AutoPipeline(real_redis)
    assert await pipe.call("INCR", "n") == 1
    # Kill every other client connection, the auto-pipeline's included.
    killed = await real_redis.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    await asyncio.sleep(0.05)  # the reader notices the closed socket
    results = []
    for _ in range(3):
        try:
            results.append(await asyncio.wait_for(pipe.call("INCR", "n"), 5))
            break
        except RedisConnectionError:
            continue
    assert results == [2]
    await pipe.close()


async def test_in_flight_commands_fail_when_connection_dies(real_redis: Redis) -> None:
    pipe = AutoPipeline(real_redis)
    await pipe.call("PING")
    # A blocking command holds the connection; the kill fails it and everything behind it.
    blocked = pipe.call("BLPOP", "never", 0)
    behind = [pipe.call("INCR", "m") for _ in range(5)]
    await asyncio.sleep(0.05)
    await real_redis.client_kill_filter(_type="normal", skipme=True)
    results = await asyncio.wait_for(asyncio.gather(blocked, *behind, return_exceptions=True), 5)
    assert all(isinstance(r, RedisConnectionError) for r in results), results
    assert await asyncio.wait_for(pipe.call("INCR", "m"), 5) == 1
    await pipe.close()


async def test_close_then_call_fails_fast(redis_client: Redis) -> None:
    pipe = AutoPipeline(redis_client)
    assert await pipe.call("INCR", "z") == 1
    await pipe.close()
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(pipe.call("INCR", "z"), 1)


async def test_abort_fails_in_flight_and_reconnects(real_redis: Redis) -> None:
    pipe = AutoPipeline(real_redis)
    await pipe.call("PING")
    blocked = pipe.call("BLPOP", "never", 0)  # holds the connection like a stopped server
    behind = [pipe.call("INCR", "a") for _ in range(3)]
    await asyncio.sleep(0.05)
    pipe.abort()
    results = await asyncio.wait_for(asyncio.gather(blocked, *behind, return_exceptions=True), 5)
    assert all(isinstance(r, RedisConnectionError) for r in results), results
    assert await asyncio.wait_for(pipe.call("INCR", "a"), 5) >= 1
    pipe.abort()  # idle: the next call simply reconnects
    await asyncio.sleep(0.05)
    assert await asyncio.wait_for(pipe.call("PING"), 5) in ("PONG", True)
    await pipe.close()
