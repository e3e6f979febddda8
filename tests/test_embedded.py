"""The embedded Valkey: shared by every user of a data directory, stopped by the last one."""

from pathlib import Path

import pytest
import redis

from service import embedded
from service.config import ConfigError
from service.embedded import EmbeddedValkey, jemalloc_path, server_env


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
