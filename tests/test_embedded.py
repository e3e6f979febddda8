"""The embedded Valkey: shared by every user of a data directory, stopped by the last one."""

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis

from service import embedded, storage
from service.config import ConfigError, Settings
from service.embedded import EmbeddedValkey, jemalloc_path, server_env
from service.storage import open_store
from store import Store
from store.redis_internals import parse_info


def test_last_user_stops_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = EmbeddedValkey(data).start()  # e.g. `leaf7 vendor create`, which starts it
    assert first.owned
    second = EmbeddedValkey(data).start()  # e.g. `leaf7 serve`, started meanwhile: attaches
    assert not second.owned
    client = redis.Redis(unix_socket_path=str(second.socket_path))
    client.set("k", "v")
    client.close()
    first.stop()  # the starter finishes first: the server must stay up for `serve`
    assert second.alive()
    client = redis.Redis(unix_socket_path=str(second.socket_path))
    assert client.get("k") == b"v"
    client.close()
    second.stop()  # the last user leaves: the server shuts down, data flushed to the AOF
    assert not second.alive()
    third = EmbeddedValkey(data).start()
    client = redis.Redis(unix_socket_path=str(third.socket_path))
    assert client.get("k") == b"v"
    client.close()
    third.stop()
    assert not third.alive()


def test_owner_stops_when_alone(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "d").start()
    assert server.alive()
    server.stop()
    assert not server.alive()
    server.stop()  # idempotent


def test_server_runs_on_jemalloc_when_installed(tmp_path: Path) -> None:
    # .ci/run installs libjemalloc2, so in CI this proves the preload; without the library
    # the server must still start (on glibc's malloc).
    server = EmbeddedValkey(tmp_path / "d").start()
    try:
        assert server.process is not None
        maps = Path(f"/proc/{server.process.pid}/maps").read_text()
        assert ("libjemalloc" in maps) == (jemalloc_path() is not None)
    finally:
        server.stop()


def test_server_env_preloads_jemalloc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lib = tmp_path / "libjemalloc.so.2"
    lib.write_bytes(b"")
    monkeypatch.setattr(embedded, "JEMALLOC_PATHS", ("/nonexistent/libjemalloc.so.2", str(lib)))
    monkeypatch.delenv("LEAF7_VALKEY_JEMALLOC", raising=False)
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    assert server_env()["LD_PRELOAD"] == str(lib)
    monkeypatch.setenv("LD_PRELOAD", "/opt/other.so")  # kept, after jemalloc
    assert server_env()["LD_PRELOAD"] == f"{lib} /opt/other.so"
    monkeypatch.delenv("LD_PRELOAD")
    for off in ("0", "off", "false"):
        monkeypatch.setenv("LEAF7_VALKEY_JEMALLOC", off)
        assert "LD_PRELOAD" not in server_env()
    monkeypatch.setenv("LEAF7_VALKEY_JEMALLOC", "maybe")
    with pytest.raises(ConfigError, match="LEAF7_VALKEY_JEMALLOC"):
        server_env()
    monkeypatch.setenv("LEAF7_VALKEY_JEMALLOC", "1")
    monkeypatch.setattr(embedded, "JEMALLOC_PATHS", ("/nonexistent/libjemalloc.so.2",))
    assert "LD_PRELOAD" not in server_env()  # not installed: glibc's malloc


def _config(server: EmbeddedValkey, name: str) -> str:
    client = redis.Redis(unix_socket_path=str(server.socket_path), decode_responses=True)
    try:
        return str(client.config_get(name)[name])
    finally:
        client.close()


def test_aof_rewrites_wait_for_a_gibibyte_of_growth(tmp_path: Path) -> None:
    # A rewrite fsyncs in the server's main thread (docs/performance.md): Valkey's 64 MB
    # default meant one every ~7 s of saturating loader traffic.
    assert Settings.from_env({}).aof_rewrite_min_mb == 1024
    server = EmbeddedValkey(tmp_path / "d").start()
    try:
        assert _config(server, "auto-aof-rewrite-min-size") == str(1024 * 2**20)
        assert _config(server, "appendonly") == "yes"
    finally:
        server.stop()


async def test_the_rewrite_threshold_is_a_setting(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"LEAF7_DATA_DIR": str(tmp_path / "d"), "LEAF7_AOF_REWRITE_MIN_MB": "96"}
    )
    async with open_store(settings) as store:  # as `leaf7 serve` opens it
        reply = await store.core.call("CONFIG", "GET", "auto-aof-rewrite-min-size")
        assert reply == {"auto-aof-rewrite-min-size": str(96 * 2**20)}
    for bad in ("63", "-1", "1g"):
        with pytest.raises(ConfigError, match="LEAF7_AOF_REWRITE_MIN_MB"):
            Settings.from_env({"LEAF7_AOF_REWRITE_MIN_MB": bad})


def test_start_waits_while_the_server_replays_its_aof(tmp_path: Path) -> None:
    # Up to LEAF7_AOF_REWRITE_MIN_MB of AOF is replayed at start (a few seconds per GiB):
    # a server answering LOADING is starting, not failing, whatever the start timeout.
    data = tmp_path / "d"
    aof = data / "appendonlydir"
    aof.mkdir(parents=True)
    n = 1_000_000  # ~0.5 s to replay here
    commands = b"".join(b"*3\r\n$3\r\nSET\r\n$8\r\nk%07d\r\n$1\r\nv\r\n" % i for i in range(n))
    (aof / "appendonly.aof.1.incr.aof").write_bytes(commands)
    (aof / "appendonly.aof.manifest").write_text("file appendonly.aof.1.incr.aof seq 1 type i\n")
    server = EmbeddedValkey(data).start(timeout=0.1)
    try:
        client = redis.Redis(unix_socket_path=str(server.socket_path))
        assert client.dbsize() == n
        client.close()
        assert "loaded from append only file" in (data / "valkey.log").read_text()
    finally:
        server.stop()


async def _rewrites(store: Store) -> int:
    return int(parse_info(await store.core.call("INFO", "persistence"))["aof_rewrites"])


async def _eventually(check: Callable[[], Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


def _quiet_settings(tmp_path: Path, grown_mb: str) -> Settings:
    return Settings.from_env(
        {
            "LEAF7_DATA_DIR": str(tmp_path / "d"),
            "LEAF7_AOF_QUIET_REWRITE_MB": grown_mb,
            "LEAF7_AOF_QUIET_OPS": "100",
        }
    )


async def test_a_quiet_server_rewrites_its_aof_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "QUIET_CHECK_EVERY", 0.1)
    async with open_store(_quiet_settings(tmp_path, "1")) as store:
        await asyncio.sleep(0.5)
        assert await _rewrites(store) == 0  # grown less than 1 MiB: nothing to do
        await store.core.call("SET", "filler", b"x" * (2 * 2**20))
        assert (await store.persistence.aof()).grown > 2 * 2**20
        assert await _eventually(lambda: _rewrites_at_least(store, 1), 5)

        async def done() -> bool:
            aof = await store.persistence.aof()
            return not aof.rewriting and aof.grown < 2**20

        assert await _eventually(done, 5)
        await asyncio.sleep(0.5)
        assert await _rewrites(store) == 1  # and not again: the AOF has not grown since


async def _rewrites_at_least(store: Store, n: int) -> bool:
    return await _rewrites(store) >= n


async def test_a_busy_server_is_rewritten_once_it_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "QUIET_CHECK_EVERY", 0.1)
    async with open_store(_quiet_settings(tmp_path, "1")) as store:
        stop = threading.Event()

        def hammer() -> None:  # another client keeps the server busy
            client = redis.Redis(unix_socket_path=str(tmp_path / "d" / "valkey.sock"))
            while not stop.is_set():
                client.ping()
            client.close()

        busy = threading.Thread(target=hammer)
        busy.start()
        try:

            async def is_busy() -> bool:
                return (await store.persistence.aof()).ops_per_sec > 500

            assert await _eventually(is_busy, 5)
            await store.core.call("SET", "filler", b"x" * (2 * 2**20))
            await asyncio.sleep(1.5)
            assert await _rewrites(store) == 0  # grown, but busy: the stall would hurt
        finally:
            stop.set()
            await asyncio.to_thread(busy.join)
        assert await _eventually(lambda: _rewrites_at_least(store, 1), 8)


async def test_no_early_rewrite_when_switched_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "QUIET_CHECK_EVERY", 0.1)
    async with open_store(_quiet_settings(tmp_path, "0")) as store:
        await store.core.call("SET", "filler", b"x" * (2 * 2**20))
        await asyncio.sleep(1)
        assert await _rewrites(store) == 0


async def test_a_rewrite_under_way_is_not_asked_for_twice(tmp_path: Path) -> None:
    settings = _quiet_settings(tmp_path, "0")
    async with open_store(settings) as store:
        await store.core.call("MSET", *(x for i in range(20) for x in (f"k{i}", "v")))
        # The rewriting child sleeps 50 ms per key: the rewrite lasts about a second.
        await store.core.call("CONFIG", "SET", "rdb-key-save-delay", "50000")
        assert await store.persistence.rewrite_aof()
        assert (await store.persistence.aof()).rewriting
        assert not await store.persistence.rewrite_aof()
        await store.core.call("CONFIG", "SET", "rdb-key-save-delay", "0")

        async def finished() -> bool:
            return not (await store.persistence.aof()).rewriting

        assert await _eventually(finished, 10)
        assert await _rewrites(store) == 1


def test_quiet_rewrite_settings() -> None:
    s = Settings.from_env({})
    assert (s.aof_quiet_rewrite_mb, s.aof_quiet_ops) == (64, 1000)
    s = Settings.from_env({"LEAF7_AOF_QUIET_REWRITE_MB": "0", "LEAF7_AOF_QUIET_OPS": "5"})
    assert (s.aof_quiet_rewrite_mb, s.aof_quiet_ops) == (0, 5)
    for name in ("LEAF7_AOF_QUIET_REWRITE_MB", "LEAF7_AOF_QUIET_OPS"):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: "-1"})
