"""Loader checks of one project that arrive together share one script call (Store._submit):
each check still gets exactly the verdict it would get alone, in arrival order."""

import asyncio
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from store import Store, keyspace
from store.models import Execution, Limits

NOW = 1_800_000_000.0  # a multiple of 60: the execution window starts here


async def setup(
    redis: Redis,
    amount: int = 8,
    limits: Limits | None = None,
    check_batch: int = 4,
    days: int = 1,
) -> tuple[Store, str, str, list[str]]:
    store = Store(redis, clock=lambda: NOW, limits=limits, check_batch=check_batch)
    await store.core.load_scripts()
    vendor_id, _ = await store.vendors.create("v", "1")
    project = await store.projects.create(vendor_id, {"name": "Hub"})
    pid = project.project_id
    made = await store.licences.generate(
        vendor_id, pid, amount=amount, key_days=days, key_hours=0, key_minutes=0, note=None
    )
    return store, vendor_id, pid, [k.key_id for k in made]


async def close(store: Store) -> None:
    store.core.deadlines.close()
    await store.core.pipe.close()


async def test_checks_of_one_tick_share_script_calls(redis_client: Redis) -> None:
    store, _, pid, ids = await setup(redis_client, amount=10)
    for i, kid in enumerate(ids):  # one at a time: each alone in its call
        assert (await store.checks.execute(pid, kid, f"hw-{i}")).code == "KEY_VALID"
    await asyncio.sleep(0.05)  # the first runs' key-ref expiries are written
    before = store.core.pipe.commands
    results = await asyncio.gather(
        *(store.checks.execute(pid, k, f"hw-{i}") for i, k in enumerate(ids))
    )
    assert store.core.pipe.commands - before == 3  # 4 + 4 + 2 checks
    assert [r.code for r in results] == ["KEY_VALID"] * 10
    assert [r.total_executions for r in results] == [2] * 10
    await close(store)


async def test_limited_and_unlimited_checks_batch_apart(redis_client: Redis) -> None:
    store, _, pid, ids = await setup(redis_client, amount=2, days=0)  # lifetime: no ref TTL
    before = store.core.pipe.commands
    limited, free = await asyncio.gather(
        store.checks.execute(pid, ids[0], "a", "10.0.0.1", "10.0.0.1"),
        store.checks.execute(pid, ids[1], "b"),
    )
    assert store.core.pipe.commands - before == 2
    assert (limited.code, limited.remaining) == ("KEY_VALID", 119)
    assert (free.code, free.remaining) == ("KEY_VALID", None)
    await close(store)


async def test_execution_limit_counts_in_arrival_order(redis_client: Redis) -> None:
    limits = Limits(execute=3, execute_window=60, failures=0)
    store, _, pid, ids = await setup(redis_client, amount=5, limits=limits, check_batch=8)
    results = await asyncio.gather(
        *(
            store.checks.execute(pid, k, f"hw-{i}", "10.0.0.1", "10.0.0.1")
            for i, k in enumerate(ids)
        )
    )
    assert [r.code for r in results] == ["KEY_VALID"] * 3 + ["RATE_LIMITED"] * 2
    assert [r.remaining for r in results[:3]] == [2, 1, 0]
    assert {(r.limited, r.reset, r.retry_after) for r in results[3:]} == {("x", NOW + 60, 60)}
    # Another client has its own window, in the same batch or not.
    other = await store.checks.execute(pid, ids[4], "hw-4", "10.0.0.2", "10.0.0.2")
    assert (other.code, other.remaining) == ("KEY_VALID", 2)
    # The window's state was written back once, with a TTL that outlives it.
    client = keyspace.client(pid, "10.0.0.1")
    assert await redis_client.hmget(client, "w", "n") == [str(int(NOW) // 60), "3"]
    assert 60 <= await redis_client.ttl(client) <= 61
    await close(store)


async def test_brute_force_block_starts_inside_a_batch(redis_client: Redis) -> None:
    limits = Limits(execute=0, failures=3, failure_window=600)
    store, _, pid, ids = await setup(redis_client, amount=1, limits=limits, check_batch=8)
    guesses = [
        store.checks.execute(pid, f"guess{i}", "hw", "10.0.0.9", "10.0.0.9") for i in range(5)
    ]
    results = await asyncio.gather(*guesses, store.checks.execute(pid, ids[0], "hw", "10.0.0.9"))
    assert [r.code for r in results] == ["KEY_INCORRECT"] * 3 + ["RATE_LIMITED"] * 3
    assert {(r.limited, r.reset, r.retry_after) for r in results[3:]} == {("f", NOW + 600, 600)}
    client = keyspace.client(pid, "10.0.0.9")
    assert await redis_client.hmget(client, "b", "f", "fn") == [str(int(NOW) + 600), None, None]
    assert 600 <= await redis_client.ttl(client) <= 601
    # Two failures, then a valid key: the count is kept for the next batch.
    fresh = "10.0.0.10"
    results = await asyncio.gather(
        store.checks.execute(pid, "nope1", "hw", fresh, fresh),
        store.checks.execute(pid, "nope2", "hw", fresh, fresh),
        store.checks.execute(pid, ids[0], "hw", fresh, fresh),
    )
    assert [r.code for r in results] == ["KEY_INCORRECT", "KEY_INCORRECT", "KEY_VALID"]
    assert (await store.checks.execute(pid, "nope3", "hw", fresh, fresh)).code == "KEY_INCORRECT"
    assert (await store.checks.execute(pid, ids[0], "hw", fresh, fresh)).code == "RATE_LIMITED"
    await close(store)


async def test_mixed_verdicts_in_one_batch_and_exact_counters(redis_client: Redis) -> None:
    store, vendor_id, pid, ids = await setup(redis_client, amount=4, check_batch=8)
    for kid, hwid in zip(ids, ["a", "b", "c", "d"], strict=True):
        assert (await store.checks.execute(pid, kid, hwid)).code == "KEY_VALID"
    await store.licences.ban(vendor_id, ids[1])
    await store.blacklist.add(vendor_id, None, "listed-hw", "cheater")
    hour = keyspace.hourly_executions(pid, int(NOW) // 3600)
    before = int(await redis_client.get(hour) or 0)
    results = await asyncio.gather(
        store.checks.execute(pid, ids[0], "a"),  # valid
        store.checks.execute(pid, ids[1], "b"),  # banned key
        store.checks.execute(pid, ids[2], "other"),  # locked to "c"
        store.checks.execute(pid, "missing", "x"),  # no such key
        store.checks.execute(pid, ids[3], "d"),  # valid
        store.checks.execute(pid, ids[0], "listed-hw"),  # blacklisted HWID
        store.checks.execute(pid, ids[0], "a"),  # valid again: sees the first one's count
    )
    assert [r.code for r in results] == [
        "KEY_VALID",
        "KEY_BANNED",
        "KEY_HWID_LOCKED",
        "KEY_INCORRECT",
        "KEY_VALID",
        "HWID_BANNED",
        "KEY_VALID",
    ]
    assert [results[0].total_executions, results[6].total_executions] == [2, 3]
    assert int(await redis_client.get(hour)) == before + 3
    assert await redis_client.ttl(hour) > 12 * 3600
    overview = await store.analytics.overview(vendor_id)
    assert overview["total_executions"] == 4 + 3
    events = await redis_client.xlen(keyspace.events(pid))
    assert events >= 4 + 7  # every verdict appended its event
    await close(store)


async def test_a_batch_for_a_missing_project(redis_client: Redis) -> None:
    store, *_ = await setup(redis_client, amount=1)
    missing = str(uuid.uuid4())
    results = await asyncio.gather(
        *(store.checks.execute(missing, f"k{i}", "hw") for i in range(3))
    )
    assert [r.code for r in results] == ["PROJECT_NOT_FOUND"] * 3
    await close(store)


async def test_a_cancelled_check_leaves_its_batch_alone(redis_client: Redis) -> None:
    store, _, pid, ids = await setup(redis_client, amount=3)
    tasks = [
        asyncio.ensure_future(store.checks.execute(pid, k, f"hw-{i}")) for i, k in enumerate(ids)
    ]
    await asyncio.sleep(0)  # all three queued in one batch
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [d.code for d in (done[0], done[2])] == ["KEY_VALID", "KEY_VALID"]  # type: ignore[union-attr]
    await close(store)


def test_check_batch_must_be_positive() -> None:
    import fakeredis

    with pytest.raises(ValueError, match="check_batch"):
        Store(fakeredis.FakeAsyncRedis(), check_batch=0)


async def test_a_batch_that_cannot_be_sent_fails_alone(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its checks fail at once with the error (no wait for the deadline); the tick's other
    batches still go."""
    store, vendor_id, pid, ids = await setup(redis_client, amount=1)
    other = (await store.projects.create(vendor_id, {"name": "Other"})).project_id
    [made] = await store.licences.generate(
        vendor_id, other, amount=1, key_days=1, key_hours=0, key_minutes=0, note=None
    )
    real = store.checks._send_batch

    def send(project_id: str, *args: Any, **kwargs: Any) -> None:
        if project_id == pid:
            raise RuntimeError("cannot build the command")
        real(project_id, *args, **kwargs)

    monkeypatch.setattr(store.checks, "_send_batch", send)
    broken, fine = await asyncio.gather(
        store.checks.execute(pid, ids[0], "a"),
        store.checks.execute(other, made.key_id, "b"),
        return_exceptions=True,
    )
    assert isinstance(broken, RuntimeError)
    assert isinstance(fine, Execution) and fine.code == "KEY_VALID"
    await close(store)


class Tag:
    """A check's tag: what the valid-check hook saw of it."""

    def __init__(self) -> None:
        self.seen: Execution | None = None


async def test_the_valid_hook_sees_tagged_valid_checks_before_they_are_answered(
    redis_client: Redis,
) -> None:
    """Valid checks queued with a tag go through ``on_valid`` (a read's at once, per project)
    before their answer; untagged and refused checks never do, and are answered as before."""
    store, _, pid, ids = await setup(redis_client, amount=10)
    calls: list[list[tuple[Any, Execution]]] = []

    def hook(project_id: str, checks: list[tuple[Any, Execution]]) -> None:
        assert project_id == pid
        calls.append(checks)
        for tag, answer in checks:
            tag.seen = answer

    store.checks.on_valid = hook
    tags = [Tag() for _ in range(11)]
    runs = [store.checks.execute(pid, k, f"hw-{i}", tag=tags[i]) for i, k in enumerate(ids[:9])]
    runs.append(store.checks.execute(pid, ids[9], "hw-9"))  # untagged
    runs.append(store.checks.execute(pid, "no-such-key", "hw", tag=tags[10]))  # refused
    results = await asyncio.wait_for(asyncio.gather(*runs), 10)  # does not hang
    assert [r.code for r in results] == ["KEY_VALID"] * 10 + ["KEY_INCORRECT"]
    assert 1 <= len(calls) <= 3  # 3 script calls (4 + 4 + 3 checks), fewer reads or as many
    seen = [tag for call in calls for tag, _ in call]
    assert sorted(map(id, seen)) == sorted(map(id, tags[:9]))  # each tagged valid check once
    assert all(tags[i].seen is results[i] for i in range(9))
    assert tags[10].seen is None
    await close(store)


async def test_a_failing_valid_hook_fails_only_the_tagged_checks(redis_client: Redis) -> None:
    store, _, pid, ids = await setup(redis_client, amount=3)

    def hook(project_id: str, checks: list[tuple[Any, Execution]]) -> None:
        raise RuntimeError("cannot sign")

    store.checks.on_valid = hook
    tagged, plain, refused = await asyncio.gather(
        store.checks.execute(pid, ids[0], "a", tag=Tag()),
        store.checks.execute(pid, ids[1], "b"),
        store.checks.execute(pid, "no-such-key", "c", tag=Tag()),
        return_exceptions=True,
    )
    assert isinstance(tagged, RuntimeError)
    assert isinstance(plain, Execution) and plain.code == "KEY_VALID"
    assert isinstance(refused, Execution) and refused.code == "KEY_INCORRECT"
    await close(store)


async def held(store: Store, pid: str, key_id: str, tag: Tag) -> "asyncio.Future[Execution]":
    """A valid tagged check held for the next read: started while another script call is
    said to be in flight (its reply would come in a later read)."""
    store.checks._in_flight += 1  # another batch's reply is due
    run = asyncio.ensure_future(store.checks.execute(pid, key_id, "hw-held", tag=tag))
    for _ in range(1000):  # until its reply is in and it waits
        await asyncio.sleep(0.01)
        if store.checks._hooked:
            break
    assert store.checks._hooked and not run.done()
    store.checks._in_flight -= 1
    return run


async def test_checks_held_for_the_next_read_share_its_hook_call(redis_client: Redis) -> None:
    """Under load (another reply due) a few valid tagged checks wait for the next read, once,
    so that the hook takes them with that read's: one signature for both."""
    # Lifetime keys: a first run writes nothing more (its reply would be a read of its own).
    store, _, pid, ids = await setup(redis_client, amount=2, check_batch=1, days=0)
    calls: list[list[Any]] = []
    store.checks.on_valid = lambda project_id, checks: calls.append([t for t, _ in checks])
    first, second = Tag(), Tag()
    run = await held(store, pid, ids[0], first)
    later = await asyncio.wait_for(store.checks.execute(pid, ids[1], "hw-1", tag=second), 10)
    assert later.code == "KEY_VALID" and (await asyncio.wait_for(run, 10)).code == "KEY_VALID"
    assert calls == [[first, second]]
    await close(store)


async def test_checks_held_for_the_next_read_are_answered_when_none_comes(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the script call the held checks wait for fails without a read (the connection
    lost), they are answered at once, not at the deadline."""
    store, vendor_id, pid, ids = await setup(redis_client, amount=1, check_batch=1, days=0)
    other = (await store.projects.create(vendor_id, {"name": "Other"})).project_id
    [made] = await store.licences.generate(
        vendor_id, other, amount=1, key_days=0, key_hours=0, key_minutes=0, note=None
    )
    real = store.core.pipe.command
    lost: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def command(args: tuple[Any, ...], flush: bool = False) -> asyncio.Future[Any]:
        return lost if any(other in str(a) for a in args[3:5]) else real(args, flush)

    monkeypatch.setattr(store.core.pipe, "command", command)
    calls: list[list[Any]] = []
    store.checks.on_valid = lambda project_id, checks: calls.append([t for t, _ in checks])
    stuck = asyncio.ensure_future(store.checks.execute(other, made.key_id, "b", tag=Tag()))
    await asyncio.sleep(0)  # its script call is in flight (and stays so)
    tag = Tag()
    run = asyncio.ensure_future(store.checks.execute(pid, ids[0], "a", tag=tag))
    for _ in range(1000):  # until its reply is in and it waits for the next read
        await asyncio.sleep(0.01)
        if store.checks._hooked:
            break
    assert store.checks._hooked and not run.done()
    lost.set_exception(ConnectionError("connection lost"))
    assert (await asyncio.wait_for(run, 10)).code == "KEY_VALID"
    assert calls == [[tag]]
    with pytest.raises(ConnectionError):
        await stuck
    await close(store)
