"""Redis Cluster specifics on a real 3-master Valkey Cluster: sharding by project, per-node
auto-pipelining, a live slot migration under load, and clean 503s when a slot stays
unavailable. (Every HTTP test also runs on the cluster through the ``app_redis`` fixture.)"""

import asyncio
import socket
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from store import keyspace
from store.autopipe import ClusterAutoPipeline, auto_pipeline
from store.client import connect
from tests.support.api import EXECUTE, Api, execute, keys_matching, setup_key
from tests.support.cluster import EmbeddedCluster


class Admin:
    """Direct connections to every node, for what an operator does by hand."""

    def __init__(self, cluster: EmbeddedCluster) -> None:
        self.cluster = cluster
        self.nodes = {
            p: Redis(host=cluster.host, port=p, decode_responses=True) for p in cluster.ports
        }
        self.ids: dict[int, str] = {}

    async def start(self) -> "Admin":
        for port, node in self.nodes.items():
            self.ids[port] = await node.execute_command("CLUSTER MYID")
        return self

    async def close(self) -> None:
        for node in self.nodes.values():
            await node.aclose()

    async def slot(self, key: str) -> int:
        any_node = next(iter(self.nodes.values()))
        return int(await any_node.execute_command("CLUSTER KEYSLOT", key))

    async def owner(self, slot: int) -> int:
        """The port of the primary serving ``slot`` (asked of every node: they must agree)."""
        owners = set()
        for node in self.nodes.values():
            for entry in await node.execute_command("CLUSTER SLOTS"):
                if int(entry[0]) <= slot <= int(entry[1]):
                    owners.add(int(entry[2][1]))
        assert len(owners) == 1, owners
        return owners.pop()


@pytest.fixture
async def admin(valkey_cluster: EmbeddedCluster) -> Any:
    a = await Admin(valkey_cluster).start()
    yield a
    await a.close()


async def test_projects_are_sharded_over_the_nodes(cluster_api: Api, admin: Admin) -> None:
    """Each project's keys all live on the node that owns its hash-tag slot, and different
    projects land on different nodes."""
    api = cluster_api
    by_node: dict[int, list[str]] = {}
    for _ in range(60):
        pid, kid = await setup_key(api)
        assert (await execute(api, pid, kid, hwid="pc"))["code"] == "KEY_VALID"
        await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
        slot = await admin.slot(keyspace.project(pid))
        by_node.setdefault(await admin.owner(slot), []).append(pid)
        if len(by_node) == len(admin.nodes):
            break
    assert len(by_node) == 3, by_node  # every node holds some project

    for port, pids in by_node.items():
        for pid in pids:
            names = await keys_matching(api.store.redis, f"*{{{pid}}}*")
            # project, buyers, active, key hash, hwid_bans
            assert len(names) >= 5, names
            assert {await admin.slot(n) for n in names} == {await admin.slot(keyspace.project(pid))}
            # Every one of them is on the owner, none anywhere else.
            slot = await admin.slot(keyspace.project(pid))
            owner = admin.nodes[port]
            assert await asyncio.gather(*(owner.exists(n) for n in names)) == [1] * len(names)
            for other_port, node in admin.nodes.items():
                count = await node.execute_command("CLUSTER COUNTKEYSINSLOT", slot)
                assert (count > 0) == (other_port == port), (port, other_port, count)

    # The auto-pipeline batched per node: it has a connection to each of the three.
    pipe = api.store.core.pipe
    assert isinstance(pipe, ClusterAutoPipeline)
    assert pipe.commands > pipe.batches > 0


async def test_one_tick_is_one_write_per_node(cluster_redis: RedisCluster, admin: Admin) -> None:
    pipe = auto_pipeline(cluster_redis, max_batch=1000)
    assert isinstance(pipe, ClusterAutoPipeline)
    assert await pipe.call("PING") == "PONG"  # loads the slot map
    before = (pipe.batches, pipe.commands)
    names = [f"n:{{tag{i}}}" for i in range(200)]
    owners = {await admin.owner(await admin.slot(n)) for n in names}
    assert len(owners) == 3
    results = await asyncio.gather(*(pipe.call("INCR", n) for n in names))
    assert results == [1] * 200
    assert (pipe.batches - before[0], pipe.commands - before[1]) == (3, 200)
    # Replies went to the right callers, across nodes.
    results = await asyncio.gather(*(pipe.call("INCRBY", n, i) for i, n in enumerate(names)))
    assert results == [1 + i for i in range(200)]
    await pipe.close()


async def test_every_primary_has_the_scripts(cluster_api: Api, admin: Admin) -> None:
    shas = [s.sha for s in api_scripts(cluster_api)]
    for node in admin.nodes.values():
        assert await node.execute_command("SCRIPT EXISTS", *shas) == [1] * len(shas)


def api_scripts(api: Api) -> list[Any]:
    return api.store.core.scripts.all()


async def _migrate(admin: Admin, slot: int, source: int, target: int, batch: int = 2) -> int:
    """Moves ``slot`` from ``source`` to ``target`` the way resharding tools do: IMPORTING,
    MIGRATING, MIGRATE a few keys at a time (pausing between batches so requests meet the
    half-moved slot), then SETSLOT NODE on both. Returns the number of keys moved."""
    src, dst = admin.nodes[source], admin.nodes[target]
    await dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", admin.ids[source])
    await src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", admin.ids[target])
    await asyncio.sleep(0.05)
    moved = 0
    while names := await src.execute_command("CLUSTER GETKEYSINSLOT", slot, batch):
        host = admin.cluster.host
        await src.execute_command("MIGRATE", host, target, "", 0, 5000, "KEYS", *names)
        moved += len(names)
        await asyncio.sleep(0.02)
    await dst.execute_command("CLUSTER SETSLOT", slot, "NODE", admin.ids[target])
    await src.execute_command("CLUSTER SETSLOT", slot, "NODE", admin.ids[target])
    for port, node in admin.nodes.items():
        if port not in (source, target):
            await node.execute_command("CLUSTER SETSLOT", slot, "NODE", admin.ids[target])
    return moved


async def test_slot_migration_under_load(cluster_api: Api, admin: Admin) -> None:
    """A project's slot moves to another node while loaders keep checking keys: every answer
    is the right verdict or a clean 503, redirections are followed, and the executions counted
    equal the KEY_VALID answers."""
    api = cluster_api
    project = await api.project()
    pid = project["project_id"]
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": "print(1)"})
    generated = await api.keys(pid, amount=12)
    valid = [k["key_id"] for k in generated[:8]]
    for i, kid in enumerate(valid):
        assert (await execute(api, pid, kid, hwid=f"pc-{i}"))["code"] == "KEY_VALID"
    banned, locked, unused = (k["key_id"] for k in generated[8:11])
    await execute(api, pid, banned, hwid="cheater")
    await api.call("POST", f"/api/vendor/keys/active/{banned}/ban")
    await execute(api, pid, locked, hwid="owner")
    base_counts = {kid: (await api.active(kid))["total_executions"] for kid in valid}

    # (key, hwid) -> the only verdict it may get
    cases = [(kid, f"pc-{i}", "KEY_VALID") for i, kid in enumerate(valid)]
    cases += [
        (banned, "cheater", "KEY_BANNED"),
        (locked, "thief", "KEY_HWID_LOCKED"),
        ("NoSuchKey", "pc-0", "KEY_INCORRECT"),
        (unused, "cheater", "HWID_BANNED"),
    ]
    answers: list[tuple[str, int, str]] = []
    stop = asyncio.Event()

    async def loader(n: int) -> None:
        i = n
        while not stop.is_set():
            kid, hwid, expected = cases[i % len(cases)]
            i += 1
            body = {"project_id": pid, "script_key": kid, "hwid": hwid}
            resp = await api.client.post(EXECUTE, json=body)
            data = await resp.json()
            if resp.status == 503:
                assert data == {"detail": "Storage unavailable"}
                answers.append((kid, 503, ""))
                continue
            assert resp.status == 200, data
            assert data["code"] == expected, (kid, hwid, data)
            answers.append((kid, 200, data["code"]))

    slot = await admin.slot(keyspace.project(pid))
    source = await admin.owner(slot)
    target = next(p for p in admin.nodes if p != source)
    redirects_before = api.store.core.pipe.redirects  # type: ignore[attr-defined]
    loaders = [asyncio.ensure_future(loader(n)) for n in range(8)]
    try:
        await asyncio.sleep(0.2)
        moved = await _migrate(admin, slot, source, target)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.gather(*loaders)

    assert moved >= 12  # the project hash, source, indexes, every key hash
    assert await admin.owner(slot) == target
    assert await admin.nodes[source].execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0
    assert api.store.core.pipe.redirects > redirects_before  # type: ignore[attr-defined]
    # The half-moved slot lasts well under the retry budget: every redirection (TRYAGAIN,
    # ASK, MOVED) was followed transparently, none became a 503.
    failed = [a for a in answers if a[1] == 503]
    assert len(answers) > 100 and failed == [], (len(answers), len(failed))

    # Exactly the KEY_VALID answers were counted, key by key.
    for kid in valid:
        counted = (await api.active(kid))["total_executions"] - base_counts[kid]
        answered = sum(1 for k, status, code in answers if k == kid and code == "KEY_VALID")
        assert counted == answered, kid
    # And the project works normally on its new node.
    assert len(await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}")) == 12
    assert (await execute(api, pid, valid[0], hwid="pc-0"))["code"] == "KEY_VALID"


async def test_unavailable_slot_is_a_clean_503(cluster_api: Api, admin: Admin) -> None:
    """A slot stuck mid-migration (MIGRATING towards a node that does not import it) answers
    TRYAGAIN forever: after a bounded number of retries the request is a 503, and the key
    works again as soon as the slot is stable."""
    api = cluster_api
    pid, kid = await setup_key(api)
    slot = await admin.slot(keyspace.project(pid))
    source = await admin.owner(slot)
    target = next(p for p in admin.nodes if p != source)
    pipe = api.store.core.pipe
    assert isinstance(pipe, ClusterAutoPipeline)
    pipe.max_attempts = 6
    src = admin.nodes[source]
    await src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", admin.ids[target])
    try:
        resp = await api.client.post(
            EXECUTE, json={"project_id": pid, "script_key": kid, "hwid": "pc"}
        )
        assert resp.status == 503
        assert await resp.json() == {"detail": "Storage unavailable"}
    finally:
        await src.execute_command("CLUSTER SETSLOT", slot, "STABLE")
    assert (await execute(api, pid, kid, hwid="pc"))["code"] == "KEY_VALID"
    assert (await api.active(kid))["total_executions"] == 1  # the failed check never ran


async def test_unreachable_cluster_fails_with_connection_error() -> None:
    """No node answers: callers get a redis ConnectionError (the service's 503), promptly."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = connect(f"redis+cluster://127.0.0.1:{port}")
    pipe = auto_pipeline(client)
    try:
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(pipe.call("GET", "x"), 10)
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(pipe.call_all("PING"), 10)
    finally:
        await pipe.close()
        await client.aclose()


async def test_lost_connection_resends_reads_only(
    cluster_redis: RedisCluster, admin: Admin
) -> None:
    """A node's connection dies with commands in flight: a read is re-sent transparently; a
    write that may have run fails (ConnectionError, the service's 503) instead of running
    twice; the pipeline reconnects for the next commands."""
    pipe = auto_pipeline(cluster_redis)
    assert isinstance(pipe, ClusterAutoPipeline)
    await cluster_redis.set("lost:{a}", "v")
    assert await pipe.call("GET", "lost:{a}") == "v"
    node = admin.nodes[await admin.owner(await admin.slot("lost:{a}"))]
    blocked = pipe.call("BLPOP", "lost:{a}:list", 0)  # holds the connection
    write = pipe.call("INCR", "lost:{a}:n")
    read = pipe.call("GET", "lost:{a}")
    await asyncio.sleep(0.05)
    await node.execute_command("CLIENT KILL", "TYPE", "normal", "SKIPME", "yes")
    results = await asyncio.wait_for(
        asyncio.gather(blocked, write, read, return_exceptions=True), 10
    )
    assert isinstance(results[0], RedisConnectionError), results
    assert isinstance(results[1], RedisConnectionError), results
    assert results[2] == "v"
    assert await asyncio.wait_for(pipe.call("INCR", "lost:{a}:n"), 10) == 1  # never ran twice
    await pipe.close()
