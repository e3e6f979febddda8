"""The ``leaf7`` console script, run as real processes against a real embedded Valkey.

Every test has its own data directory (``LEAF7_DATA_DIR``) and no ``REDIS_URL``, so the CLI and
``leaf7 serve`` start (or share) the embedded server of that directory.
"""

import hashlib
import hmac
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from service.embedded import EmbeddedValkey
from tests.support.processes import (
    CMD_TIMEOUT,
    LEAF7,
    Server,
    assert_no_valkey,
    create_vendor,
    http,
    leaf7,
    serving,
)


def new_project(server: Server, api_key: str) -> tuple[int, Any]:
    return http("POST", server.base + "/api/vendor/projects", {"name": "Hub"}, api_key)


def test_console_script_exists() -> None:
    assert LEAF7.is_file(), LEAF7
    proc = subprocess.run(
        [str(LEAF7), "--help"], capture_output=True, text=True, timeout=CMD_TIMEOUT, check=False
    )
    assert proc.returncode == 0
    assert "serve" in proc.stdout and "vendor" in proc.stdout


def test_vendor_create_without_server(data_dir: Path) -> None:
    acme = create_vendor(data_dir, "Acme", "123")
    assert acme["api_key"]
    # The CLI started the embedded server for itself and stopped it again.
    assert_no_valkey(data_dir)
    # The data is on disk (AOF in the data directory).
    aof = data_dir / "appendonlydir"
    assert aof.is_dir() and any(p.stat().st_size > 0 for p in aof.iterdir())

    other = create_vendor(data_dir, "Other")  # no --discord-id: null
    assert other["discord_id"] is None
    assert other["vendor_id"] != acme["vendor_id"]
    assert other["api_key"] != acme["api_key"]
    assert_no_valkey(data_dir)

    with serving(data_dir) as server:
        for vendor in (acme, other):
            status, body = new_project(server, vendor["api_key"])
            assert status == 201, body
        status, _ = new_project(server, acme["api_key"] + "x")
        assert status == 401
        assert server.terminate() == 0
    assert_no_valkey(data_dir)


def test_vendor_commands_while_serving(data_dir: Path) -> None:
    with serving(data_dir) as server:
        x = create_vendor(data_dir, "X", "42")
        # The CLI shared the server's Valkey: the key works at once, and the server's Valkey
        # is still up after the CLI exited.
        status, project = new_project(server, x["api_key"])
        assert status == 201, project
        status, keys = http(
            "POST",
            server.base + "/api/vendor/keys/buyer",
            {"project_id": project["project_id"]},
            x["api_key"],
        )
        assert status == 200, keys

        y = create_vendor(data_dir, "Y")
        status, project = new_project(server, y["api_key"])
        assert status == 201, project
        gen = {"project_id": project["project_id"]}
        status, body = http("POST", server.base + "/api/vendor/keys/buyer", gen, y["api_key"])
        assert status == 403, body

        proc = leaf7(data_dir, "vendor", "link-discord", y["vendor_id"], "777")
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        assert json.loads(proc.stdout) == {"vendor_id": y["vendor_id"], "discord_id": "777"}
        status, body = http("POST", server.base + "/api/vendor/keys/buyer", gen, y["api_key"])
        assert status == 200, body
        assert len(body) == 1

        proc = leaf7(data_dir, "vendor", "link-discord", "no-such-vendor", "777")
        assert proc.returncode != 0
        assert proc.stdout == ""
        assert "no-such-vendor" in proc.stderr

        proc = leaf7(data_dir, "vendor", "link-discord", y["vendor_id"], "abc")
        assert proc.returncode == 2
        assert proc.stdout == ""
        assert "Discord ID" in proc.stderr

        assert EmbeddedValkey(data_dir).alive()
        started = time.monotonic()
        assert server.terminate(timeout=15) == 0, server.output()
        assert time.monotonic() - started < 15
    assert not EmbeddedValkey(data_dir).alive()
    assert_no_valkey(data_dir)


def test_api_key_stored_only_as_hash(data_dir: Path) -> None:
    vendor = create_vendor(data_dir, "Acme", "123")
    api_key: str = vendor["api_key"]
    # Kept as a keyed hash: HMAC-SHA256 with the secret generated into the data directory.
    secret_file = data_dir / "secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = secret_file.read_text().strip().encode()
    assert len(secret) == 64
    digest = hmac.new(secret, api_key.encode(), hashlib.sha256).hexdigest()
    server = EmbeddedValkey(data_dir).start()
    try:
        client: Any = redis.Redis(unix_socket_path=str(server.socket_path), decode_responses=True)
        try:
            names: list[str] = list(client.scan_iter(count=1000))
            assert names, "the vendor was not persisted"
            values: list[str] = []
            for name in names:
                kind = client.type(name)
                if kind == "string":
                    values.append(client.get(name))
                elif kind == "hash":
                    for field, value in client.hgetall(name).items():
                        values += [field, value]
                elif kind == "set":
                    values += client.smembers(name)
                elif kind == "list":
                    values += client.lrange(name, 0, -1)
                elif kind == "zset":
                    values += client.zrange(name, 0, -1)
            assert all(api_key not in n for n in names), names
            assert all(api_key not in v for v in values)
            # What is kept is the digest: it finds the vendor, and the vendor records it.
            (ref,) = [n for n in names if digest in n]
            assert client.get(ref) == vendor["vendor_id"]
            hashes = [client.hgetall(n) for n in names if client.type(n) == "hash"]
            assert [h["name"] for h in hashes if h.get("api_key_hash") == digest] == ["Acme"]
        finally:
            client.close()
    finally:
        server.stop()
    assert_no_valkey(data_dir)


def test_vendor_rotate_key_while_serving(data_dir: Path) -> None:
    """The operator re-issues a lost or leaked key; the CLI and the server share the secret
    generated into the data directory."""
    acme = create_vendor(data_dir, "Acme", "1")
    with serving(data_dir) as server:
        assert new_project(server, acme["api_key"])[0] == 201
        proc = leaf7(data_dir, "vendor", "rotate-key", acme["vendor_id"])
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert set(out) == {"vendor_id", "api_key", "previous_key_expires_at"}
        assert out["vendor_id"] == acme["vendor_id"]
        # Default grace 0: the old key stops at once, the new one works.
        assert new_project(server, acme["api_key"]) == (401, {"detail": "Not authenticated"})
        status, projects = http("GET", server.base + "/api/vendor/projects", None, out["api_key"])
        assert status == 200 and len(projects) == 1
        proc = leaf7(data_dir, "vendor", "rotate-key", acme["vendor_id"], "--grace", "3600")
        newest = json.loads(proc.stdout)["api_key"]
        for key in (out["api_key"], newest):
            assert http("GET", server.base + "/api/vendor/projects", None, key)[0] == 200
        # A leaked key: the vendor rotated (the old key is in its grace period), then the
        # operator rotates without --grace: every earlier key stops at once.
        status, body = http("POST", server.base + "/api/vendor/api_key/rotate", None, newest)
        assert status == 200
        proc = leaf7(data_dir, "vendor", "rotate-key", acme["vendor_id"])
        assert proc.returncode == 0, proc.stderr
        final = json.loads(proc.stdout)["api_key"]
        for key in (out["api_key"], newest, body["api_key"]):
            assert http("GET", server.base + "/api/vendor/projects", None, key)[0] == 401
        assert http("GET", server.base + "/api/vendor/projects", None, final)[0] == 200
        proc = leaf7(data_dir, "vendor", "rotate-key", "no-such-vendor")
        assert proc.returncode == 1
        assert "no vendor" in proc.stderr
