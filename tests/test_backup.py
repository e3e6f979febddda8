"""``leaf7 backup`` and ``leaf7 restore`` (service/backup/), as real processes on real
servers: the embedded Valkey of a data directory (a point-in-time snapshot taken while
``leaf7 serve`` runs), a Valkey on ``REDIS_URL``, a primary found through Sentinel and a
Valkey Cluster (per-key export)."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from service import backup
from service.config import Settings
from service.embedded import EmbeddedValkey
from store import keyspace
from tests.support.cluster import EmbeddedCluster
from tests.support.processes import (
    CMD_TIMEOUT,
    LEAF7,
    Server,
    create_vendor,
    free_port,
    http,
    leaf7,
    serving,
)
from tests.support.sentinel import SentinelGroup

pytestmark = pytest.mark.real

SERVE_ENV = {"LEAF7_WEBHOOKS": "0", "LEAF7_WEBHOOK_ALLOW": "127.0.0.0/8"}


# ------------------------------------------------------------------------------- helpers


def _client(data_dir: Path) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(data_dir / "valkey.sock"), socket_timeout=10)


def _cmd(client: Any, *args: Any) -> Any:
    return client.execute_command(*args)


def _value(c: redis.Redis, key: bytes, kind: str) -> Any:
    if kind == "string":
        return c.get(key)
    if kind == "hash":
        return c.hgetall(key)
    if kind == "set":
        return c.smembers(key)
    if kind == "zset":
        return c.zrange(key, 0, -1, withscores=True)
    if kind == "list":
        return c.lrange(key, 0, -1)
    assert kind == "stream", kind
    groups = []
    for g in c.xinfo_groups(key):
        entries = c.xpending_range(key, g["name"], "-", "+", 1000)
        # time_since_delivered runs on; the delivery itself must survive.
        pending = [(p["message_id"], p["consumer"], p["times_delivered"]) for p in entries]
        groups.append((g["name"], g["last-delivered-id"], g["pending"], pending))
    info = c.xinfo_stream(key)
    return c.xrange(key), groups, info["last-generated-id"], info["length"]


def contents(c: redis.Redis) -> dict[bytes, tuple[str, Any, int]]:
    """Every key: (type, value read per type, absolute expiry in ms or -1)."""
    out = {}
    for key in c.scan_iter(count=1000):
        kind = os.fsdecode(_cmd(c, "TYPE", key))
        out[key] = (kind, _value(c, key, kind), int(_cmd(c, "PEXPIRETIME", key)))
    return out


def leaf7_contents(c: redis.Redis) -> dict[bytes, tuple[str, Any, int]]:
    """``contents`` of the keys a backup holds: leaf7's keyspace, less the families never
    restored (store/keyspace.py ``NOT_RESTORED``: sessions, rate-limit windows)."""
    return {k: v for k, v in contents(c).items() if keyspace.backup_family(k) == "restore"}


def assert_same(restored: dict[bytes, tuple[str, Any, int]], source: dict[bytes, Any]) -> None:
    assert sorted(restored) == sorted(source)
    for key, (kind, value, expires) in source.items():
        got_kind, got_value, got_expires = restored[key]
        assert (got_kind, got_value) == (kind, value), key
        if expires == -1:
            assert got_expires == -1, key
        else:
            assert abs(got_expires - expires) <= 1000, (key, got_expires, expires)


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``leaf7`` with exactly these LEAF7_*/REDIS_URL variables."""
    base = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("LEAF7_")}
    return subprocess.run(
        [str(LEAF7), *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT,
        check=False,
    )


def execute(server: Server, project_id: str, key_id: str, hwid: str) -> str:
    body = {"project_id": project_id, "script_key": key_id, "hwid": hwid}
    status, verdict = http("POST", server.base + "/api/loader/execute", body)
    assert status == 200, verdict
    return str(verdict["code"])


def populate(server: Server, api_key: str) -> dict[str, str]:
    """Projects, buyer keys and active keys in every state, the blacklist, a webhook with
    notifications on, events: what a vendor's day leaves in Redis."""

    def call(method: str, path: str, body: Any = None, want: int = 200) -> Any:
        status, out = http(method, server.base + path, body, api_key)
        assert status == want, (path, status, out)
        return out

    hook = {"name": "Hub", "webhook_url": "http://127.0.0.1:9/hook", "notify_enabled": True}
    project = call("POST", "/api/vendor/projects", hook, want=201)["project_id"]
    call("PUT", f"/api/vendor/projects/{project}/source", {"source": "print(L7_ScriptName)"})
    call("POST", "/api/vendor/projects", {"name": "Other"}, want=201)
    gen = {"project_id": project, "amount": 4, "key_days": 0, "note": "lifetime"}
    valid, banned, by_bot, unredeemed = (
        k["key_id"] for k in call("POST", "/api/vendor/keys/buyer", gen)
    )
    gen = {"project_id": project, "amount": 1, "key_days": 3}
    (expiring,) = (k["key_id"] for k in call("POST", "/api/vendor/keys/buyer", gen))

    assert execute(server, project, valid, "hw-valid") == "KEY_VALID"  # redeemed, HWID bound
    assert execute(server, project, expiring, "hw-exp") == "KEY_VALID"  # a TTL from now on
    assert execute(server, project, banned, "hw-banned") == "KEY_VALID"
    call("POST", f"/api/vendor/keys/active/{banned}/ban")
    call("POST", "/api/vendor/keys/redeem", {"key_id": by_bot, "discord_id": "555"})
    call("POST", "/api/vendor/blacklist", {"hwid": "hw-evil", "reason": "chargeback"})
    call("POST", "/api/vendor/blacklist", {"ip": "203.0.113.9"})
    assert execute(server, project, valid, "hw-evil") == "HWID_BANNED"
    assert execute(server, project, "no-such-key-0000", "hw-x") == "KEY_INCORRECT"
    return {
        "project": project,
        "valid": valid,
        "banned": banned,
        "expiring": expiring,
        "unredeemed": unredeemed,
    }


# --------------------------------------------------------------------- the embedded default


def test_round_trip_of_a_serving_instance(tmp_path: Path) -> None:
    source_dir, target_dir = tmp_path / "data", tmp_path / "restored"
    file = tmp_path / "leaf7.l7b"
    vendor = create_vendor(source_dir, "Acme", "123")
    with serving(source_dir, SERVE_ENV) as server:
        ids = populate(server, vendor["api_key"])
        proc = leaf7(source_dir, "backup", str(file))  # while the service runs
        assert proc.returncode == 0, proc.stderr
        summary = _summary(proc)
        everything = contents(_client(source_dir))
        source = leaf7_contents(_client(source_dir))
        assert server.terminate() == 0
    # The API key's and the clients' rate-limit windows were there, and are not in the file.
    assert any(keyspace.backup_family(k) == "skip" for k in everything), everything.keys()
    assert summary["consistency"] == "point-in-time"
    assert summary["keys"] == len(source) and summary["bytes"] == file.stat().st_size
    assert file.stat().st_mode & 0o777 == 0o600  # key ids and API key digests inside
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left"
    assert not (source_dir / "dump.rdb").exists() and not list(source_dir.glob(".backup-*"))

    kinds = {kind for kind, _, _ in source.values()}
    assert {"hash", "set", "string", "stream"} <= kinds, kinds
    assert any(exp > 0 for _, _, exp in source.values()), "an expiring key has a TTL"
    p = ids["project"].encode()
    notify = source[b"l7:{" + p + b"}:notify"]
    assert notify[0] == "stream" and notify[1][1], "the webhook queue and its group"
    assert source[b"l7:{" + p + b"}:key:" + ids["expiring"].encode()][2] > 0
    assert set(source[b"l7:{" + p + b"}:bl_hwids"][1]) == {b"hw-evil"}

    proc = leaf7(target_dir, "restore", str(file))
    assert proc.returncode == 0, proc.stderr
    assert _summary(proc)["keys"] == len(source)
    assert _summary(proc)["not_restored"] == 0
    # The secret is not in Redis: it is backed up next to the backup file (docs).
    shutil.copy2(source_dir / "secret", target_dir / "secret")
    with serving(target_dir, SERVE_ENV) as restored:
        assert_same(contents(_client(target_dir)), source)
        project = ids["project"]
        assert execute(restored, project, ids["valid"], "hw-valid") == "KEY_VALID"
        assert execute(restored, project, ids["banned"], "hw-banned") == "KEY_BANNED"
        assert execute(restored, project, ids["valid"], "hw-other") == "KEY_HWID_LOCKED"
        assert execute(restored, project, ids["unredeemed"], "hw-evil") == "HWID_BANNED"
        status, keys = http(
            "GET", restored.base + f"/api/vendor/keys/buyer?project_id={project}", None,
            vendor["api_key"],
        )  # fmt: skip
        assert status == 200 and len(keys) == 5, keys

        # Restoring over a target that holds keys is refused, and changes nothing.
        before = contents(_client(target_dir))
        proc = leaf7(target_dir, "restore", str(file))
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert proc.stdout == ""
        assert "not empty" in proc.stderr or "already holds" in proc.stderr
        assert "--force" in proc.stderr
        assert contents(_client(target_dir)).keys() == before.keys()


def _summary(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    out: dict[str, Any] = json.loads(lines[0])
    return out


def test_the_snapshot_is_one_instant_under_writes(tmp_path: Path) -> None:
    """Keys generated in batches while the backup runs: in the backup, the project's key
    index and the key hashes agree exactly (a per-key copy taken during the writes would
    catch some of a batch's hashes without the index entries, or the reverse)."""
    data_dir, restored_dir = tmp_path / "data", tmp_path / "restored"
    vendor = create_vendor(data_dir, "Acme", "123")
    file = tmp_path / "b.l7b"
    with serving(
        data_dir, {**SERVE_ENV, "LEAF7_RATE_KEYGEN": "0", "LEAF7_RATE_VENDOR": "0"}
    ) as server:
        status, project = http(
            "POST", server.base + "/api/vendor/projects", {"name": "Hub"}, vendor["api_key"]
        )
        assert status == 201
        pid = project["project_id"]
        stop = threading.Event()
        made: list[int] = []

        def generate() -> None:
            while not stop.is_set():
                body = {"project_id": pid, "amount": 200}
                s, _ = http("POST", server.base + "/api/vendor/keys/buyer", body, vendor["api_key"])
                made.append(s)

        writer = threading.Thread(target=generate)
        writer.start()
        try:
            time.sleep(0.3)
            proc = leaf7(data_dir, "backup", str(file))
            time.sleep(0.2)
        finally:
            stop.set()
            writer.join(10)
        assert proc.returncode == 0, proc.stderr
        assert made and set(made) == {200}, made
        live = _client(data_dir).scard(f"l7:{{{pid}}}:buyers")
    proc = leaf7(restored_dir, "restore", str(file))
    assert proc.returncode == 0, proc.stderr
    server_ = EmbeddedValkey(restored_dir).start()
    try:
        c = _client(restored_dir)
        index = {os.fsdecode(m) for m in c.smembers(f"l7:{{{pid}}}:buyers")}
        hashes = {
            os.fsdecode(k).rpartition(":")[2]
            for k in c.scan_iter(match=f"l7:{{{pid}}}:key:*", count=1000)
        }
        assert index == hashes
        assert len(index) % 200 == 0 and 0 < len(index) < live  # whole batches, mid-load
    finally:
        server_.stop()


def test_a_bad_backup_file_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    create_vendor(data_dir, "Acme", "123")
    good = tmp_path / "good.l7b"
    assert leaf7(data_dir, "backup", str(good)).returncode == 0
    raw = good.read_bytes()
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x01
    cases = {
        "truncated.l7b": (raw[: len(raw) - 40], "truncated"),
        "cut-in-header.l7b": (raw[:12], "truncated"),
        "flipped.l7b": (bytes(flipped), "corrupt"),
        "no-end.l7b": (raw[: len(raw) - 41], "truncated"),
        "trailing.l7b": (raw + b"x", "corrupt"),
        "other.l7b": (b"SQLite format 3\x00" + raw[16:], "not a leaf7 backup"),
        "empty.l7b": (b"", "empty"),
    }
    target = tmp_path / "target"
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        proc = leaf7(target, "restore", str(tmp_path / name))
        assert proc.returncode == 1, (name, proc.stdout, proc.stderr)
        assert message in proc.stderr, (name, proc.stderr)
        assert proc.stdout == ""
        assert not target.exists(), "verified before any server is started or written"
    proc = leaf7(target, "restore", str(tmp_path / "missing.l7b"))
    assert proc.returncode == 1 and "No such file" in proc.stderr
    proc = leaf7(target, "restore", str(good))
    assert proc.returncode == 0, proc.stderr


def test_a_failed_backup_leaves_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    create_vendor(data_dir, "Acme", "123")
    file = tmp_path / "b.l7b"
    file.write_bytes(b"yesterday's backup")
    settings = Settings(data_dir=data_dir)

    def fail(self: Any, key: bytes, expire_ms: int, payload: bytes) -> None:
        raise redis.ConnectionError("the server went away")

    monkeypatch.setattr(backup.BackupWriter, "record", fail)
    with pytest.raises(backup.BackupError, match="went away"):
        backup.backup(settings, file)
    assert file.read_bytes() == b"yesterday's backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.l7b", "data"]
    assert not (data_dir / "dump.rdb").exists() and not list(data_dir.glob(".backup-*"))
    monkeypatch.undo()
    assert backup.backup(settings, file).keys > 0
    proc = leaf7(data_dir, "backup", str(tmp_path / "no-such-dir" / "b.l7b"))
    assert proc.returncode == 1 and "does not exist" in proc.stderr


# ------------------------------------------------------------------------- REDIS_URL, cluster


@pytest.fixture
def two_valkeys(tmp_path: Path) -> Iterator[tuple[EmbeddedValkey, EmbeddedValkey]]:
    a = EmbeddedValkey(tmp_path / "a").start()
    b = EmbeddedValkey(tmp_path / "b").start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def fill(c: "redis.Redis | redis.RedisCluster", n: int = 300) -> None:
    """Every type, in many slots, some with TTLs, one that expires before the restore."""
    for i in range(n):
        tag = f"{{p{i}}}"
        c.hset(f"l7:{tag}:key:{i}", mapping={"hwid": f"h{i}", "banned": i % 2})
        c.sadd(f"l7:{tag}:buyers", *[str(j) for j in range(i % 7 + 1)])
        c.set(f"l7:kref:{i}", tag, ex=3600 + i if i % 3 == 0 else None)
    c.zadd("l7:z", {"a": 1.5, "b": 2})
    c.rpush("l7:l", "x", "y", b"\x00\xff")
    c.xadd("l7:{p1}:notify", {"e": "1"})
    c.xgroup_create("l7:{p1}:notify", "deliverers", id="0")
    c.xadd("l7:{p1}:notify", {"e": "2"})
    c.xreadgroup("deliverers", "w1", {"l7:{p1}:notify": ">"}, count=1)
    # Outlives the backup that follows (~0.5 s; 6x that under load), gone before the restore.
    c.set("l7:short", "lived", px=3000)


def wait_expired(c: redis.Redis, key: str) -> None:
    """Until ``key`` has expired (a bound that only says "does not hang")."""
    deadline = time.monotonic() + 30
    while c.exists(key):
        assert time.monotonic() < deadline, key
        time.sleep(0.05)


def test_redis_url_round_trip(
    tmp_path: Path, two_valkeys: tuple[EmbeddedValkey, EmbeddedValkey]
) -> None:
    a, b = two_valkeys
    src = redis.Redis.from_url(a.url)
    fill(src)
    src.set("other:app", "not leaf7's")  # a shared Redis: another application's key
    file = tmp_path / "remote.l7b"
    proc = run({"REDIS_URL": a.url}, tmp_path, "backup", str(file))
    assert proc.returncode == 0, proc.stderr
    summary = _summary(proc)
    assert summary["consistency"] == "per-key" and summary["keys"] == src.dbsize() - 1
    wait_expired(src, "l7:short")
    source = leaf7_contents(src)
    assert b"other:app" not in source
    assert b"l7:short" not in source
    proc = run({"REDIS_URL": b.url}, tmp_path, "restore", str(file))
    assert proc.returncode == 0, proc.stderr
    assert _summary(proc)["expired_skipped"] == 1
    dst = redis.Redis.from_url(b.url)
    assert_same(contents(dst), source)

    # --force restores over a target that holds keys: the backup's keys win, others stay.
    dst.set("l7:kref:1", "changed")
    dst.set("extra", "stays")
    proc = run({"REDIS_URL": b.url}, tmp_path, "restore", str(file))
    assert proc.returncode == 2
    assert dst.get("l7:kref:1") == b"changed"
    proc = run({"REDIS_URL": b.url}, tmp_path, "restore", "--force", str(file))
    assert proc.returncode == 0, proc.stderr
    assert dst.get("extra") == b"stays"
    dst.delete("extra")
    assert_same(contents(dst), source)


def test_cluster_round_trip(
    tmp_path: Path,
    valkey_cluster: EmbeddedCluster,
    two_valkeys: tuple[EmbeddedValkey, EmbeddedValkey],
) -> None:
    """Every primary is scanned; a cluster's backup restores into one server and back into
    the (emptied) cluster."""
    rc = redis.RedisCluster(host=valkey_cluster.host, port=valkey_cluster.ports[0])
    rc.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    try:
        fill(rc)
        rc.delete("l7:short")
        file = tmp_path / "cluster.l7b"
        proc = run({"REDIS_URL": valkey_cluster.url}, tmp_path, "backup", str(file))
        assert proc.returncode == 0, proc.stderr
        source: dict[bytes, Any] = {}
        for port in valkey_cluster.ports:
            source |= contents(redis.Redis(host=valkey_cluster.host, port=port))
        assert _summary(proc)["keys"] == len(source) > 600

        single = two_valkeys[0]
        proc = run({"REDIS_URL": single.url}, tmp_path, "restore", str(file))
        assert proc.returncode == 0, proc.stderr
        assert_same(contents(redis.Redis.from_url(single.url)), source)

        proc = run({"REDIS_URL": valkey_cluster.url}, tmp_path, "restore", str(file))
        assert proc.returncode == 2, "the cluster still holds the keys"
        rc.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
        proc = run({"REDIS_URL": valkey_cluster.url}, tmp_path, "restore", str(file))
        assert proc.returncode == 0, proc.stderr
        restored: dict[bytes, Any] = {}
        for port in valkey_cluster.ports:
            restored |= contents(redis.Redis(host=valkey_cluster.host, port=port))
        assert_same(restored, source)
    finally:
        rc.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
        rc.close()


def test_backup_memory_stays_bounded(
    tmp_path: Path, two_valkeys: tuple[EmbeddedValkey, EmbeddedValkey]
) -> None:
    """~160 MB of values (hosted-script-sized strings): the backup process never holds
    more than a bounded batch of them."""
    a, _ = two_valkeys
    c = redis.Redis.from_url(a.url)
    value = os.urandom(200_000)
    pipe = c.pipeline(transaction=False)
    for i in range(800):
        pipe.set(f"l7:{{p{i}}}:source", value)
    pipe.execute()
    settings = replace(Settings(data_dir=tmp_path / "unused"), redis_url=a.url)
    code = (
        "import sys; from pathlib import Path; from service import backup;"
        "from service.config import Settings; from dataclasses import replace;"
        "hwm = lambda: next(int(l.split()[1]) for l in open('/proc/self/status')"
        " if l.startswith('VmHWM'));"
        f"s = replace(Settings(), redis_url={settings.redis_url!r}); base = hwm();"
        "r = backup.backup(s, Path(sys.argv[1]));"
        "print(r.keys, base, hwm())"
    )
    file = tmp_path / "big.l7b"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(file)],
        capture_output=True, text=True, timeout=120, check=False, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    keys, base_kib, peak_kib = map(int, proc.stdout.split())
    assert keys == 800 and file.stat().st_size > 160_000_000
    # Measured: +9 MB (the peak resident size after the imports, before the backup: 48 MB).
    assert peak_kib - base_kib < 40_000, (base_kib, peak_kib)


# ---------------------------------------------------------------------- REDIS_URL, Sentinel


@pytest.fixture
def sentinel_pair(tmp_path: Path) -> Iterator[tuple[SentinelGroup, SentinelGroup]]:
    """The source (a primary, a replica, three sentinels) and an empty target (a primary and
    one sentinel)."""
    source = SentinelGroup(tmp_path / "sentinel-a")
    target = SentinelGroup(tmp_path / "sentinel-b", replicas=0, sentinels=1)
    try:
        source.start()
        target.start()
        yield source, target
    finally:
        source.stop()
        target.stop()


@pytest.mark.slow
def test_sentinel_url_round_trip(
    tmp_path: Path,
    sentinel_pair: tuple[SentinelGroup, SentinelGroup],
    two_valkeys: tuple[EmbeddedValkey, EmbeddedValkey],
) -> None:
    """A service on ``redis+sentinel://`` populated through its API, backed up over the
    sentinels (the first one listed refuses connections) and restored through the sentinels
    of another setup (the first one listed does not answer), and into a plain server: every
    key and TTL the same."""
    a, b = sentinel_pair
    env = {"LEAF7_SECRET": "s" * 64, "LEAF7_DATA_DIR": str(tmp_path / "data"), "REDIS_URL": a.url}
    proc = run(env, tmp_path, "vendor", "create", "--name", "Acme", "--discord-id", "123")
    assert proc.returncode == 0, proc.stderr
    with serving(tmp_path / "data", {**SERVE_ENV, **env}) as server:
        ids = populate(server, _summary(proc)["api_key"])
    primary = redis.Redis(host=a.host, port=a.primary_port())
    fill(primary, 50)  # lists, sorted sets, a key that expires before the restore

    file = tmp_path / "sentinel.l7b"
    url = a.url.replace("://", f"://127.0.0.1:{free_port()},")  # nothing listens there
    proc = run({"REDIS_URL": url}, tmp_path, "backup", str(file))
    assert proc.returncode == 0, proc.stderr
    summary = _summary(proc)
    assert summary["consistency"] == "per-key"
    total = primary.dbsize()
    skipped = [k for k in primary.scan_iter(count=1000) if keyspace.backup_family(k) != "restore"]
    assert skipped, "the API key's rate-limit window, not in the file"
    assert summary["keys"] == total - len(skipped)
    with backup.BackupReader(file) as reader:
        assert reader.header["source"] == "redis"  # a server: restores into any
    wait_expired(primary, "l7:short")
    source = leaf7_contents(primary)
    assert b"l7:short" not in source
    p = ids["project"].encode()
    assert source[b"l7:{" + p + b"}:key:" + ids["expiring"].encode()][2] > 0
    assert {"hash", "set", "string", "stream", "zset", "list"} <= {k for k, _, _ in source.values()}

    # A sentinel of the source, stopped, then b's: were the stopped one asked without a bound
    # or once it wakes, it would name the source's primary (which holds keys: exit 2).
    silent = a.processes[a.sentinel_ports[0]].pid
    url = f"redis+sentinel://{a.host}:{a.sentinel_ports[0]},{b.host}:{b.sentinel_ports[0]}/leaf7"
    os.kill(silent, signal.SIGSTOP)
    try:
        started = time.monotonic()
        proc = run({"REDIS_URL": url}, tmp_path, "restore", str(file))
        took = time.monotonic() - started
    finally:
        os.kill(silent, signal.SIGCONT)
    assert proc.returncode == 0, proc.stderr
    assert took < backup.SENTINEL_TIMEOUT + 10, took  # one wait for it, no retries: no hang
    assert _summary(proc)["expired_skipped"] == 1
    assert_same(contents(redis.Redis(host=b.host, port=b.primary_port())), source)

    plain = two_valkeys[0]
    proc = run({"REDIS_URL": plain.url}, tmp_path, "restore", str(file))
    assert proc.returncode == 0, proc.stderr
    assert_same(contents(redis.Redis.from_url(plain.url)), source)

    # A master name the sentinels do not know: no primary, nothing written.
    proc = run({"REDIS_URL": a.url + "x"}, tmp_path, "backup", str(tmp_path / "none.l7b"))
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "cannot connect to REDIS_URL: no sentinel names the primary 'leaf7x'" in proc.stderr
    assert "monitors no primary named 'leaf7x'" in proc.stderr
    assert not (tmp_path / "none.l7b").exists()


def test_no_sentinel_listening_is_a_clear_error(tmp_path: Path) -> None:
    url = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/leaf7"
    file = tmp_path / "b.l7b"
    proc = run({"REDIS_URL": url}, tmp_path, "backup", str(file))
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert "leaf7: backup failed: cannot connect to REDIS_URL" in proc.stderr
    assert "no sentinel names the primary 'leaf7'" in proc.stderr
    assert proc.stderr.count("Connection refused") == 2, proc.stderr  # each sentinel's answer
    assert list(tmp_path.iterdir()) == [], "no file, no temporary file"

    empty = tmp_path / "empty.l7b"
    backup.BackupWriter(empty, {"format": backup.FORMAT}).commit()  # a valid backup of no keys
    proc = run({"REDIS_URL": url}, tmp_path, "restore", str(empty))
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "leaf7: restore failed: cannot connect to REDIS_URL" in proc.stderr


# ----------------------------------------------------------- what a backup file may decide


def _craft(path: Path, records: list[tuple[bytes, bytes]]) -> None:
    """A backup file of these (key, DUMP payload) records, checksum and all: what anyone can
    write (the checksum is no signature)."""
    out = backup.BackupWriter(path, {"format": backup.FORMAT, "consistency": "per-key"})
    for key, payload in records:
        out.record(key, 0, payload)
    out.commit()


def _dump(c: redis.Redis, key: str | bytes) -> bytes:
    payload = c.dump(key)
    assert isinstance(payload, bytes), key
    return payload


def _payloads(scratch: redis.Redis, n: int) -> list[tuple[bytes, bytes]]:
    """``n`` leaf7-looking keys (a hash each), dumped by a scratch server."""
    for i in range(n):
        scratch.hset(f"l7:{{p{i}}}:key:K{i}", mapping={"hwid": f"h{i}"})
    out = [(os.fsencode(k), _dump(scratch, k)) for k in sorted(scratch.keys("l7:*"))]
    scratch.flushall()
    return out


def _records(path: Path) -> list[tuple[bytes, bytes]]:
    with backup.BackupReader(path) as reader:
        return [(r.key, r.payload) for r in reader.records()]


def test_a_file_with_a_key_outside_leaf7s_keyspace_writes_nothing(
    tmp_path: Path, two_valkeys: tuple[EmbeddedValkey, EmbeddedValkey]
) -> None:
    """One foreign name, in the last of three batches: the whole file is refused before the
    first write, into a Redis target and into a data directory."""
    scratch, target = (redis.Redis.from_url(v.url) for v in two_valkeys)
    records = _payloads(scratch, 2 * backup.BATCH + 10)
    scratch.set("other:thing", "x")
    file = tmp_path / "foreign.l7b"
    _craft(file, [*records, (b"other:thing", _dump(scratch, "other:thing"))])
    target.set("l7:kref:present", "p")
    before = contents(target)
    proc = run({"REDIS_URL": two_valkeys[1].url}, tmp_path, "restore", "--force", str(file))
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "outside leaf7's keyspace ('other:thing')" in proc.stderr, proc.stderr
    assert contents(target) == before

    data_dir = tmp_path / "data"
    proc = leaf7(data_dir, "restore", str(file))
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "outside leaf7's keyspace" in proc.stderr
    assert not data_dir.exists(), "refused before any server is started"

    _craft(file, records)  # the same file without it restores
    proc = run({"REDIS_URL": two_valkeys[1].url}, tmp_path, "restore", "--force", str(file))
    assert proc.returncode == 0, proc.stderr
    assert target.dbsize() == len(records) + 1


def _get(url: str, cookie: str) -> int:
    """The status of a GET with this cookie, redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    req = urllib.request.Request(url, headers={"Cookie": cookie})  # noqa: S310
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code


def test_a_session_planted_in_a_file_does_not_sign_in(
    tmp_path: Path, two_valkeys: tuple[EmbeddedValkey, EmbeddedValkey]
) -> None:
    """A real backup plus a dashboard session for its vendor (the session hash is found by
    the plain SHA-256 of the cookie: anyone who writes a file can make one): restored, the
    session is dropped and its cookie signs nothing in."""
    source_dir, target_dir = tmp_path / "data", tmp_path / "restored"
    vendor = create_vendor(source_dir, "Acme", "123")
    good = tmp_path / "good.l7b"
    assert leaf7(source_dir, "backup", str(good)).returncode == 0
    server = EmbeddedValkey(source_dir).start()
    try:
        digest = _client(source_dir).hget(f"l7:{{v:{vendor['vendor_id']}}}", "api_key_hash")
    finally:
        server.stop()
    assert digest

    scratch = redis.Redis.from_url(two_valkeys[0].url)
    session_id = "planted-" + "x" * 40
    name = f"l7:session:{{{hashlib.sha256(session_id.encode()).hexdigest()}}}"
    ends = int(time.time()) + 86400
    fields = ("vendor_id", vendor["vendor_id"], "digest", digest, "csrf", "c" * 43, "ends", ends)
    _cmd(scratch, "HSET", name, *fields)
    planted = tmp_path / "planted.l7b"
    _craft(planted, [*_records(good), (name.encode(), _dump(scratch, name))])

    proc = leaf7(target_dir, "restore", str(planted))
    assert proc.returncode == 0, proc.stderr
    shutil.copy2(source_dir / "secret", target_dir / "secret")
    with serving(target_dir, SERVE_ENV) as restored:
        assert not _client(target_dir).exists(name)
        url = restored.base + "/dashboard/"
        assert _get(url, f"l7_session={session_id}") == 303  # to the sign-in page
        status, _ = http("GET", restored.base + "/api/vendor/projects", None, vendor["api_key"])
        assert status == 200, "the rest of the file was restored"
    assert _summary(proc)["not_restored"] == 1


def test_what_is_written_is_what_was_verified(
    tmp_path: Path,
    two_valkeys: tuple[EmbeddedValkey, EmbeddedValkey],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checksum is verified before the first write: a file corrupt in its last batch
    writes nothing; a file replaced, or changed in place, between the check and the writes
    (here: while restore connects to the target) has none of its new bytes written."""
    scratch, target = (redis.Redis.from_url(v.url) for v in two_valkeys)
    records = _payloads(scratch, 2 * backup.BATCH + 10)
    good = tmp_path / "good.l7b"
    _craft(good, records)
    raw = good.read_bytes()

    # Corrupt in the last batch (a payload byte of the last record: the checksum fails).
    at = raw.rindex(records[-1][1]) + 3
    corrupt = tmp_path / "corrupt.l7b"
    corrupt.write_bytes(raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :])
    proc = run({"REDIS_URL": two_valkeys[1].url}, tmp_path, "restore", str(corrupt))
    assert proc.returncode == 1 and "checksum mismatch" in proc.stderr, proc.stderr
    assert target.dbsize() == 0

    settings = replace(Settings(data_dir=tmp_path / "unused"), redis_url=two_valkeys[1].url)
    connect = backup.transport.connect

    def swapped_meanwhile(url: str) -> Any:
        os.replace(corrupt, file)  # a new file under the verified name
        return connect(url)

    file = tmp_path / "restore-me.l7b"
    shutil.copy(good, file)
    monkeypatch.setattr(backup.transport, "connect", swapped_meanwhile)
    done = backup.restore(settings, file)
    assert done.keys == len(records)
    assert {k: target.dump(k) for k, _ in records} == dict(records), "the verified file"
    target.flushall()

    def changed_in_place(url: str) -> Any:
        at = raw.index(records[0][1]) + 3
        with open(file, "r+b") as f:  # a byte of the first record's payload, same inode
            f.seek(at)
            f.write(bytes([raw[at] ^ 0x01]))
        return connect(url)

    shutil.copy(good, file)
    monkeypatch.setattr(backup.transport, "connect", changed_in_place)
    with pytest.raises(backup.BackupError, match="changed on disk since it was verified"):
        backup.restore(settings, file)
    assert target.dbsize() == 0


def test_backup_files_and_the_servers_files_are_private(tmp_path: Path) -> None:
    """Under umask 022: the backup file, and every file the embedded Valkey writes (its AOF,
    the RDB snapshot a backup is made from, its log), are mode 0600."""
    data_dir = tmp_path / "data"
    file = tmp_path / "b.l7b"
    old = os.umask(0o022)
    try:
        create_vendor(data_dir, "Acme", "123")
        proc = leaf7(data_dir, "backup", str(file))
        assert proc.returncode == 0, proc.stderr
        server = EmbeddedValkey(data_dir).start()
        try:
            c = _client(data_dir)
            c.set("l7:x", "y")
            c.bgsave()
            while (
                int(c.info("persistence")["rdb_bgsave_in_progress"])
                or not (data_dir / "dump.rdb").exists()
            ):
                time.sleep(0.02)
        finally:
            server.stop()
    finally:
        os.umask(old)
    assert file.stat().st_mode & 0o777 == 0o600
    written = [data_dir / "dump.rdb", data_dir / "valkey.log", data_dir / "secret"]
    written += list((data_dir / "appendonlydir").iterdir())
    assert len(written) >= 5, written
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in written}
    assert set(modes.values()) == {"0o600"}, modes
    assert (data_dir / "appendonlydir").stat().st_mode & 0o077 == 0


def _crc64(data: bytes) -> int:
    """The CRC-64 (Jones) that closes a DUMP payload."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x95AC9329AC4BC9B5 if crc & 1 else crc >> 1
    return crc


def test_the_embedded_server_checks_restored_payloads_deeply(tmp_path: Path) -> None:
    """A payload whose checksum is right but whose structure is not (a listpack entry that
    claims more bytes than it has) is refused by the embedded Valkey, from ``leaf7
    restore`` too, and the server keeps serving."""
    data_dir = tmp_path / "data"
    server = EmbeddedValkey(data_dir).start()
    try:
        c = _client(data_dir)
        c.hset("l7:{p}:key:K", mapping={"a": "b"})
        payload = _dump(c, "l7:{p}:key:K")
        c.flushall()
        body = bytearray(payload[:-8])
        assert _crc64(bytes(body)).to_bytes(8, "little") == payload[-8:]
        body[body.index(b"\x81a")] = 0x85  # the entry "a" now claims 5 bytes
        crafted = bytes(body) + _crc64(bytes(body)).to_bytes(8, "little")
        checked = int(c.info("stats")["dump_payload_sanitizations"])
        with pytest.raises(redis.ResponseError, match="Bad data format"):
            c.restore("l7:{p}:key:K", 0, crafted)
        assert int(c.info("stats")["dump_payload_sanitizations"]) == checked + 1
        file = tmp_path / "crafted.l7b"
        _craft(file, [(b"l7:{p}:key:K", crafted)])
        proc = leaf7(data_dir, "restore", str(file))
        assert proc.returncode == 1 and "the target refused a key" in proc.stderr, proc.stderr
        assert c.ping() and c.dbsize() == 0
    finally:
        server.stop()
