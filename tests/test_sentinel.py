"""Redis Sentinel: the ``redis+sentinel://`` URL, replica acknowledgements
(``LEAF7_MIN_REPLICAS_ACK``), a demoted primary (``READONLY``), and a failover under load on
real servers (tests/support/sentinel.py): SIGKILL the primary while loader checks and vendor
writes run, the service follows the promotion without a restart and loses no acknowledged
write."""

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.crc import key_slot
from redis.exceptions import ResponseError

from service.app import create_app
from service.config import ConfigError, Settings
from store import Store, StoreUnavailable, keyspace
from store.client import aclose, connect, is_cluster_url, is_sentinel_url, parse_sentinel_url
from store.durable import Durability
from tests.support.api import Api, store_of
from tests.support.cluster import EmbeddedCluster
from tests.support.sentinel import SentinelGroup

UNAVAILABLE = {"detail": "Storage unavailable"}


# ---- the URL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "sentinels", "master", "db", "user", "password", "tls"),
    [
        (
            "redis+sentinel://10.0.0.1:26379/main",
            [("10.0.0.1", 26379)],
            "main",
            0,
            None,
            None,
            False,
        ),
        (
            "redis+sentinel://a:26379,b:26380, c:26381/my%20primary/3/",
            [("a", 26379), ("b", 26380), ("c", 26381)],
            "my primary",
            3,
            None,
            None,
            False,
        ),
        ("rediss+sentinel://:s%40cret@h:26379/m", [("h", 26379)], "m", 0, None, "s@cret", True),
        ("REDIS+SENTINEL://app:pw@[::1]:26379/m/0", [("::1", 26379)], "m", 0, "app", "pw", False),
    ],
)
async def test_sentinel_urls(
    url: str,
    sentinels: list[tuple[str, int]],
    master: str,
    db: int,
    user: str | None,
    password: str | None,
    tls: bool,
) -> None:
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url
    assert is_sentinel_url(url) and not is_cluster_url(url)
    parsed = parse_sentinel_url(url)
    assert (list(parsed.sentinels), parsed.master, parsed.db) == (sentinels, master, db)
    assert (parsed.username, parsed.password, parsed.tls) == (user, password, tls)
    client = connect(url, timeout=1.0)
    try:
        assert isinstance(client, Redis)
        pool = client.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        assert pool.service_name == master
        assert pool.connection_kwargs["db"] == db
        assert pool.connection_kwargs["password"] == password
        hosts = [
            s.connection_pool.connection_kwargs["host"] for s in pool.sentinel_manager.sentinels
        ]
        assert hosts == [h for h, _ in sentinels]
    finally:
        await aclose(client)


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://",
        "redis+sentinel://h:26379",  # no master name
        "redis+sentinel://h:26379/",
        "redis+sentinel://h/m",
        "redis+sentinel://h:port/m",
        "redis+sentinel://h:0/m",
        "redis+sentinel://a:26379,,b:26380/m",
        "redis+sentinel://h:26379/m/x",
        "redis+sentinel://h:26379/m/1/2",
        "redis+sentinel://h:26379/m?ssl=true",
        "redis+sentinel://h:26379//1",
    ],
)
def test_bad_sentinel_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings.from_env({"REDIS_URL": url})


def test_min_replicas_ack_setting() -> None:
    sentinel = {"REDIS_URL": "redis+sentinel://h:26379/m"}
    assert Settings.from_env({}).min_replicas_ack == 0
    assert Settings.from_env({"LEAF7_MIN_REPLICAS_ACK": ""}).min_replicas_ack == 0
    assert Settings.from_env({"LEAF7_MIN_REPLICAS_ACK": "0"}).min_replicas_ack == 0
    for url in ("redis+sentinel://h:26379/m", "redis://h:6379/0"):
        env = {"REDIS_URL": url, "LEAF7_MIN_REPLICAS_ACK": "2"}
        assert Settings.from_env(env).min_replicas_ack == 2
    for raw in ("-1", "one", "1.5"):
        with pytest.raises(ConfigError, match="LEAF7_MIN_REPLICAS_ACK"):
            Settings.from_env({**sentinel, "LEAF7_MIN_REPLICAS_ACK": raw})
    with pytest.raises(ConfigError, match="LEAF7_MIN_REPLICAS_ACK needs REDIS_URL"):
        Settings.from_env({"LEAF7_MIN_REPLICAS_ACK": "1"})  # the embedded Valkey
    cluster = {"REDIS_URL": "redis+cluster://a:7000", "LEAF7_MIN_REPLICAS_ACK": "1"}
    with pytest.raises(ConfigError, match="LEAF7_MIN_REPLICAS_ACK"):
        Settings.from_env(cluster)
    assert Settings.from_env({**cluster, "LEAF7_MIN_REPLICAS_ACK": "0"}).min_replicas_ack == 0


def test_replica_acknowledgement_replies() -> None:
    d = Durability("waitaof", timeout=2.0, replicas=1)
    assert d.enabled
    assert d.commands() == [("WAIT", 1, 800), ("WAITAOF", 1, 0, 800)]  # 1.6 s in all
    d.check_all(d.commands(), [1, [1, 0]])
    d.check_all(d.commands(), [2, [1, 0]])
    with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
        d.check_all(d.commands(), [0, [1, 0]])  # on no replica in time: not acknowledged
    with pytest.raises(StoreUnavailable, match="fsynced"):
        d.check_all(d.commands(), [1, [0, 0]])
    assert (d.waits, d.timeouts, d.replica_timeouts) == (3, 1, 1)
    with pytest.raises(StoreUnavailable, match="WAIT failed"):
        d.check_all(d.commands(), [ResponseError("ERR WAIT cannot be used with replica"), [1, 0]])
    # Without fsync waits (LEAF7_FSYNC=none, or a server that refuses WAITAOF): WAIT alone.
    w = Durability("none", timeout=2.0, replicas=2)
    assert w.enabled and w.commands() == [("WAIT", 2, 800)]
    w.check_all(w.commands(), [2])
    with pytest.raises(StoreUnavailable, match="1 of 2 replicas"):
        w.check_all(w.commands(), [1])
    u = Durability("waitaof", timeout=2.0, replicas=1)
    u.check_all(
        u.commands(), [1, ResponseError("ERR WAITAOF cannot be used when appendonly is disabled")]
    )
    assert u.mode == "unsupported" and u.enabled and u.commands() == [("WAIT", 1, 800)]
    # No replicas asked for: the fsync wait alone, as before.
    assert Durability("waitaof", timeout=2.0).commands() == [("WAITAOF", 1, 0, 1600)]
    assert Durability("none", timeout=2.0).commands() == []
    with pytest.raises(ValueError, match="replicas"):
        Durability("waitaof", replicas=-1)


# ---- real servers -------------------------------------------------------------------------


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A primary and its replica, no sentinels."""
    group = SentinelGroup(tmp_path / "pair", sentinels=0)
    try:
        yield group.start()
    finally:
        group.stop()


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A primary, one replica, three sentinels (quorum 2, down after 1 s)."""
    group = SentinelGroup(tmp_path / "sentinel")
    try:
        yield group.start()
    finally:
        group.stop()


@pytest.mark.real
async def test_a_demoted_server_answers_503_and_the_store_reconnects(pair: SentinelGroup) -> None:
    """A server that answers READONLY (an old primary demoted by a failover, still alive):
    503, never the error as a verdict, and the connections are dropped so that the next ones
    ask for the primary again."""
    replica = pair.data_ports[1]
    client = connect(f"redis://127.0.0.1:{replica}", timeout=1.0)
    store = Store(client, timeout=1.0)
    try:
        first = await store.core.call("CLIENT", "ID")
        with pytest.raises(StoreUnavailable, match="replica"):
            await store.core.call("SET", "k", "v")  # the auto-pipeline
        assert store.core.demotions == 1
        assert await store.core.call("CLIENT", "ID") != first  # a new connection
        with pytest.raises(StoreUnavailable, match="replica"):
            await store.core.write([("SET", "k", "v")])  # a pool connection (durable write)
        with pytest.raises(StoreUnavailable, match="replica"):
            await store.vendors.create("Acme", "1")  # a script
        assert store.core.demotions == 3
        # Promoted (REPLICAOF NO ONE): the same store writes again.
        pair.ask(replica, "REPLICAOF", "NO", "ONE")
        vendor_id, _ = await store.vendors.create("Acme", "1")
        assert vendor_id
    finally:
        await store.close()
        await client.aclose()


async def _execute(client: TestClient[Any, Any], run: dict[str, str]) -> tuple[int, Any, float]:
    t0 = time.monotonic()
    resp = await client.post("/api/loader/execute", json=run)
    return resp.status, await resp.json(), time.monotonic() - t0


async def _check_during_failover(
    client: TestClient[Any, Any],
    run: dict[str, str],
    bound: float,
    checks: list[tuple[float, int]],
    answered: list[tuple[float, float, int]],
) -> float:
    """One loader check while the primary may be gone: KEY_VALID or 503 within the bound,
    recorded in ``checks`` and ``answered``; returns how long it took."""
    t0 = time.monotonic()
    status, body, took = await _execute(client, run)
    assert took < bound + 5.0, took  # within the bound, never a hang
    if status == 200:
        assert body["code"] == "KEY_VALID", body  # never a wrong verdict
    else:
        assert (status, body) == (503, UNAVAILABLE)
    checks.append((t0, status))
    answered.append((t0, time.monotonic(), status))
    return took


@pytest.mark.real
@pytest.mark.slow
async def test_failover_under_load_loses_no_acknowledged_write(
    aiohttp_client: Any, sentinels: SentinelGroup, settings: Settings
) -> None:
    bound = 1.0
    # The first sentinel listed is down: any one that answers is enough.
    url = sentinels.url.replace("//", "//127.0.0.1:1,", 1)
    cfg = replace(settings, redis_url=url, redis_timeout=bound, min_replicas_ack=1)
    client = await aiohttp_client(create_app(cfg))
    store = store_of(client)
    assert store.core.durability.replicas == 1
    api = await Api(client, store).login()
    pid = (await api.project())["project_id"]
    [key] = await api.keys(pid)
    run = {"project_id": pid, "script_key": key["key_id"], "hwid": "PC"}
    status, body, _ = await _execute(client, run)
    assert (status, body["code"]) == (200, "KEY_VALID")

    checks: list[tuple[float, int]] = []  # (started, status)
    answered: list[tuple[float, float, int]] = []  # (started, answered, status)
    slowest = 0.0
    writes: list[tuple[float, int]] = []
    acked: list[str] = [key["key_id"]]  # key ids handed out (200)
    stop = asyncio.Event()

    async def checker() -> None:
        nonlocal slowest
        while not stop.is_set():
            took = await _check_during_failover(client, run, bound, checks, answered)
            slowest = max(slowest, took)
            await asyncio.sleep(0.005)

    async def writer() -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            resp = await client.post(
                "/api/vendor/keys/buyer", json={"project_id": pid, "amount": 1}, headers=api.auth
            )
            body = await resp.json()
            assert time.monotonic() - t0 < bound + 5.0  # does not hang
            if resp.status == 200:
                acked.extend(k["key_id"] for k in body)
            else:
                assert (resp.status, body) == (503, UNAVAILABLE)
            writes.append((t0, resp.status))
            await asyncio.sleep(0.005)

    tasks = [asyncio.ensure_future(checker()) for _ in range(4)]
    tasks.append(asyncio.ensure_future(writer()))
    try:
        await asyncio.sleep(1.0)
        old = sentinels.primary_port()
        killed = time.monotonic()
        sentinels.kill(old)
        new = await asyncio.to_thread(sentinels.wait_failover, old, 20.0)
        promoted = time.monotonic() - killed
        deadline = time.monotonic() + 15
        while not any(t > killed and s == 200 for t, s in checks):
            assert time.monotonic() < deadline, "loader checks did not recover"
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)  # steady again
        # ... and at least two writes started well after the recovery (each may take the
        # whole bound to be refused: wait for them rather than for a fixed time).
        steady = min(a for t, a, s in answered if t > killed and s == 200) + 0.5
        while sum(1 for t, _ in writes if t > steady) < 2:
            assert time.monotonic() < deadline + 10, "no write after the recovery"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    recovered = min(a for t, a, s in answered if t > killed and s == 200) - killed
    failed = sum(1 for t, s in checks if t > killed and s != 200)
    before = [s for t, s in writes if t < killed]
    # Every check that started well after the recovery is answered.
    late = [s for t, s in checks if t > killed + recovered + 0.5]
    assert late and all(s == 200 for s in late), late
    assert before.count(200) > 0
    # No acknowledged write is lost: every key handed out is on the promoted replica.
    names = [keyspace.key(pid, k) for k in acked]
    present = sum(sentinels.ask(new, "EXISTS", n) for n in names)
    assert present == len(acked)
    # The promoted replica has no replica of its own: with LEAF7_MIN_REPLICAS_ACK=1 no write
    # is acknowledged any more (503), however long it runs.
    after = [s for t, s in writes if t > killed + recovered + 0.5]
    assert after and all(s == 503 for s in after), after
    print(
        f"\nfailover: sentinels agreed on the promoted replica {promoted:.2f} s after the "
        f"SIGKILL; loader checks KEY_VALID again {recovered:.2f} s after it ({failed} checks "
        f"answered 503, the slowest answer took {slowest * 1000:.0f} ms); {len(acked)} "
        f"acknowledged keys, {len(acked) - present} lost"
    )


@pytest.mark.real
@pytest.mark.slow
async def test_a_failover_with_the_old_primary_alive_is_followed(
    aiohttp_client: Any, sentinels: SentinelGroup, settings: Settings
) -> None:
    """``SENTINEL FAILOVER``: the old primary stays up and becomes a replica of the new one.
    Loader checks and vendor writes move to the new primary without a restart (never an
    error other than 503), and with ``LEAF7_MIN_REPLICAS_ACK=1`` writes are acknowledged
    again once the old primary replicates from the new one."""
    cfg = replace(settings, redis_url=sentinels.url, redis_timeout=1.0, min_replicas_ack=1)
    client = await aiohttp_client(create_app(cfg))
    api = await Api(client, store_of(client)).login()
    pid = (await api.project())["project_id"]
    [key] = await api.keys(pid)
    run = {"project_id": pid, "script_key": key["key_id"], "hwid": "PC"}
    assert (await _execute(client, run))[0] == 200

    old = sentinels.primary_port()
    core = store_of(client).core
    assert core.pipe.peer == ("127.0.0.1", old)
    sentinels.ask(sentinels.sentinel_ports[0], "SENTINEL", "FAILOVER", "leaf7")
    new = await asyncio.to_thread(sentinels.wait_failover, old, 20.0)
    assert sentinels.ask(old, "ROLE")[0] == "master"  # still up, still a primary
    t0 = time.monotonic()

    async def step() -> tuple[int, int, Any]:
        status, body, _ = await _execute(client, run)
        resp = await client.post(
            "/api/vendor/keys/buyer", json={"project_id": pid, "amount": 1}, headers=api.auth
        )
        written = await resp.json()
        assert status in (200, 503) and resp.status in (200, 503), (status, body, written)
        if status == 200:
            assert body["code"] == "KEY_VALID"
        return status, resp.status, written

    # The store notices the new primary (follow_primary: once a second) and moves its
    # pipelined connection there, although the old primary never closed it.
    while core.pipe.peer != ("127.0.0.1", new):
        await step()
        assert time.monotonic() - t0 < 10, "still on the old primary"  # ~1 s expected
    moved = time.monotonic() - t0
    assert core.switches == 1
    assert (await _execute(client, run))[0] == 200
    # Writes are acknowledged again once the old primary replicates from the new one.
    while True:
        status, written_status, written = await step()
        if status == 200 and written_status == 200:
            break
        assert time.monotonic() - t0 < 20, "writes not acknowledged again"
        await asyncio.sleep(0.05)
    print(
        f"\nSENTINEL FAILOVER: loader checks on the new primary {moved:.2f} s after the "
        f"sentinels agreed, acknowledged writes again after {time.monotonic() - t0:.2f} s"
    )
    [new_key] = written
    assert sentinels.ask(new, "EXISTS", keyspace.key(pid, new_key["key_id"])) == 1
    assert sentinels.ask(new, "ROLE")[0] == "master"
    assert sentinels.ask(old, "ROLE")[0] == "slave"


# ---- Redis Cluster with replicas ----------------------------------------------------------


@pytest.fixture
def replicated_cluster(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    """3 primaries, a replica each, failover after a 1 s node timeout."""
    cluster = EmbeddedCluster(tmp_path / "cluster", masters=3, replicas=1, node_timeout_ms=1000)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.mark.real
@pytest.mark.cluster
@pytest.mark.slow
async def test_cluster_failover_under_load(
    aiohttp_client: Any, replicated_cluster: EmbeddedCluster, settings: Settings
) -> None:
    """SIGKILL the primary that serves a project: its replica takes over, the cluster
    router follows (MOVED, a refreshed slot map), loader checks answer KEY_VALID again and
    never anything else than KEY_VALID or 503. Replication is asynchronous and there is no
    replica acknowledgement on a cluster: the keys lost, if any, are reported."""
    cluster = replicated_cluster
    bound = 1.0
    cfg = replace(settings, redis_url=cluster.url, redis_timeout=bound)
    client = await aiohttp_client(create_app(cfg))
    api = await Api(client, store_of(client)).login()
    pid = (await api.project())["project_id"]
    [key] = await api.keys(pid)
    run = {"project_id": pid, "script_key": key["key_id"], "hwid": "PC"}
    assert (await _execute(client, run))[0] == 200
    slot = key_slot(keyspace.project(pid).encode())
    with cluster.client(cluster.ports[0]) as c:
        ranges = c.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
    [entry] = [r for r in ranges if int(r[0]) <= slot <= int(r[1])]
    old, replica = int(entry[2][1]), int(entry[3][1])

    checks: list[tuple[float, int]] = []
    answered: list[tuple[float, float, int]] = []  # (started, answered, status)
    acked: list[str] = [key["key_id"]]
    stop = asyncio.Event()

    async def checker() -> None:
        while not stop.is_set():
            await _check_during_failover(client, run, bound, checks, answered)
            await asyncio.sleep(0.005)

    async def writer() -> None:
        while not stop.is_set():
            resp = await client.post(
                "/api/vendor/keys/buyer", json={"project_id": pid, "amount": 1}, headers=api.auth
            )
            body = await resp.json()
            if resp.status == 200:
                acked.extend(k["key_id"] for k in body)
            else:
                assert (resp.status, body) == (503, UNAVAILABLE)
            await asyncio.sleep(0.005)

    tasks = [asyncio.ensure_future(checker()) for _ in range(4)]
    tasks.append(asyncio.ensure_future(writer()))
    try:
        await asyncio.sleep(1.0)
        killed = time.monotonic()
        cluster.kill(old)
        deadline = time.monotonic() + 20
        while not any(t > killed and s == 200 for t, s in checks):
            assert time.monotonic() < deadline, "loader checks did not recover"
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    assert cluster.primary_of(replica)
    recovered = min(a for t, a, s in answered if t > killed and s == 200) - killed
    failed = sum(1 for t, s in checks if t > killed and s != 200)
    late = [s for t, s in checks if t > killed + recovered + 0.5]
    assert late and all(s == 200 for s in late), late
    with cluster.client(replica) as c:
        present = sum(c.exists(keyspace.key(pid, k)) for k in acked)
    print(
        f"\ncluster failover: loader checks KEY_VALID again {recovered:.2f} s after the "
        f"SIGKILL ({failed} checks answered 503); {len(acked)} acknowledged keys, "
        f"{len(acked) - present} lost"
    )
