"""The README's walkthrough, run verbatim.

The ``sh`` code blocks under the README's "Walkthrough" heading are run in order by one
``bash`` process (``set -euo pipefail``) against a real ``leaf7 serve`` started here, with its
own embedded Valkey in a temporary data directory. The only changes made to the text are the
port (``127.0.0.1:8000`` -> a free port) and the path of ``.venv/bin/leaf7`` (-> the ``leaf7``
of the interpreter running the tests).
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
LEAF7 = Path(sys.executable).parent / "leaf7"
HEADING = "## Walkthrough"


def walkthrough_blocks(text: str) -> list[str]:
    """The ```sh blocks of the section that starts at HEADING (up to the next ## heading)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == HEADING)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    blocks: list[str] = []
    current: list[str] | None = None
    for line in lines[start + 1 : end]:
        if current is None:
            if line.strip() == "```sh":
                current = []
        elif line.strip() == "```":
            blocks.append("\n".join(current))
            current = None
        else:
            current.append(line)
    assert current is None, "unterminated code block in the walkthrough"
    return blocks


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(data_dir: Path) -> dict[str, str]:
    """The caller's environment without REDIS_URL or LEAF7_*: an embedded Valkey in data_dir."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("LEAF7_")}
    env["LEAF7_DATA_DIR"] = str(data_dir)
    return env


def valkey_pids(data_dir: Path) -> list[int]:
    """valkey-server processes serving data_dir (found by their socket path)."""
    needle = str((data_dir / "valkey.sock").resolve()).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                if b"valkey-server" in cmdline and needle in cmdline:
                    pids.append(int(entry.name))
    return pids


@contextlib.contextmanager
def leaf7_serve(data_dir: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = clean_env(data_dir)
    env["LEAF7_PORT"] = str(port)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            env=env,
            cwd=data_dir.parent,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"leaf7 serve exited with {proc.returncode}:\n{log_path.read_text()}"
                    )
                with contextlib.suppress(OSError):
                    url = f"http://127.0.0.1:{port}/healthz"
                    with urllib.request.urlopen(url, timeout=2) as resp:
                        if resp.status == 200:
                            break
                if time.monotonic() > deadline:
                    pytest.fail(f"leaf7 serve not ready in 20 s:\n{log_path.read_text()}")
                time.sleep(0.05)
            yield proc
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            for pid in valkey_pids(data_dir):  # only what a failed run left behind
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_walkthrough_blocks_are_found() -> None:
    blocks = walkthrough_blocks(README.read_text())
    assert len(blocks) >= 2
    script = "\n".join(blocks)
    assert "leaf7 vendor create" in script
    assert "127.0.0.1:8000" in script
    assert "/api/loader/execute" in script


@pytest.mark.real
def test_readme_walkthrough_runs_verbatim(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is required (.ci/run installs it)")
    port = free_port()
    script = "\n".join(walkthrough_blocks(README.read_text()))
    script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    script = script.replace(".venv/bin/leaf7", str(LEAF7))
    data_dir = tmp_path / "data"
    env = clean_env(data_dir)

    with leaf7_serve(data_dir, port, tmp_path / "serve.log"):
        proc = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + script],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    out = proc.stdout
    assert proc.returncode == 0, (proc.returncode, out, proc.stderr)
    assert '"api_key":' in out  # the vendor
    for code in ("KEY_VALID", "KEY_HWID_LOCKED", "HWID_BANNED"):
        assert re.search(rf'"code": ?"{code}"', out), (code, out)
    assert "local L7_LinkedDiscordID" in out  # the valid verdict carries the hosted script
    assert "previous_key_expires_at" in out  # the rotation
    assert out.rstrip().endswith("3.1.0"), out[-300:]  # /openapi.json
    # Every call was answered without an error.
    assert '"detail"' not in out, out
