"""The embedded Valkey: shared by every user of a data directory, stopped by the last one."""

from pathlib import Path

import redis

from service.embedded import EmbeddedValkey


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
