"""The ``leaf7`` console script, run as real processes against a real embedded Valkey.

Every test has its own data directory (``LEAF7_DATA_DIR``) and no ``REDIS_URL``, so the CLI and
``leaf7 serve`` start (or share) the embedded server of that directory.
"""

import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from service.embedded import EmbeddedValkey

LEAF7 = Path(sys.executable).parent / "leaf7"
CMD_TIMEOUT = 20.0


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("LEAF7_")}
    env["LEAF7_DATA_DIR"] = str(data_dir)
    return env


def leaf7(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LEAF7), *args],
        env=_env(data_dir),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT,
        check=False,
    )


def create_vendor(data_dir: Path, name: str, discord_id: str | None = None) -> dict[str, Any]:
    args = ["vendor", "create", "--name", name]
    if discord_id is not None:
        args += ["--discord-id", discord_id]
    proc = leaf7(data_dir, *args)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout  # exactly one JSON object
    out: dict[str, Any] = json.loads(lines[0])
    assert set(out) == {"vendor_id", "api_key", "discord_id"}
    assert out["discord_id"] == discord_id
    return out


def valkey_pids(data_dir: Path) -> list[int]:
    """Every valkey-server process serving this data directory (found by its socket path)."""
    needle = str((data_dir / "valkey.sock").resolve()).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"valkey-server" in cmdline and needle in cmdline:
            pids.append(int(entry.name))
    return pids


def kill_valkeys(data_dir: Path) -> None:
    """Cleanup only: kills servers left behind by a failed test (started for this directory)."""
    for pid in valkey_pids(data_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def assert_no_valkey(data_dir: Path) -> None:
    deadline = time.monotonic() + 5
    while valkey_pids(data_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert valkey_pids(data_dir) == []
    socket_path = data_dir / "valkey.sock"
    assert not socket_path.exists() or not EmbeddedValkey(data_dir).alive()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Any = None, api_key: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if api_key is not None:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


class Server:
    """``leaf7 serve`` as a subprocess on a free port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(LEAF7), "serve", "--port", str(self.port)],
            env=_env(data_dir),
            cwd=data_dir.parent,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"leaf7 serve exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(OSError):
                if http("GET", self.base + "/healthz") == (200, {"status": "ok"}):
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"leaf7 serve not ready in {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def terminate(self, timeout: float = 15.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


@contextlib.contextmanager
def serving(data_dir: Path) -> Iterator[Server]:
    server = Server(data_dir)
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()
        kill_valkeys(data_dir)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    try:
        yield path
    finally:
        kill_valkeys(path)


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
        proc = leaf7(data_dir, "vendor", "rotate-key", "no-such-vendor")
        assert proc.returncode == 1
        assert "no vendor" in proc.stderr
