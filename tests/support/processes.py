"""Real ``leaf7`` processes for tests: the console script, a serving instance, its Valkey."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

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
    """``leaf7 serve [args]`` as a subprocess on a free port."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, args: Sequence[str] = ()
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(LEAF7), "serve", "--port", str(self.port), *args],
            env={**_env(data_dir), **(env or {})},
            cwd=data_dir.parent,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:  # "does not hang": ~1 s expected
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
def serving(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """``leaf7 serve`` on ``data_dir`` (``env``: extra variables), killed afterwards."""
    server = Server(data_dir, env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()
        kill_valkeys(data_dir)
