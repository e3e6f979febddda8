"""The first run: ``leaf7 serve`` says once at start where it listens, the dashboard and the
API explorer, where its data lives and, while no vendor exists, the exact command that creates
one (which then works as printed)."""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from service import firstrun
from service.config import Settings
from tests.support.processes import CMD_TIMEOUT, Server, kill_valkeys


def _started(data_dir: Path, env: dict[str, str] | None = None) -> str:
    server = Server(data_dir, env)
    try:
        server.wait_ready()
        assert server.terminate() == 0
        return server.output()
    finally:
        server.kill()
        kill_valkeys(data_dir)


@pytest.mark.real
def test_start_up_lines_guide_to_the_first_vendor(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = _started(data_dir)
    port = re.search(r"leaf7 listens on http://127\.0\.0\.1:(\d+)\n", out)
    assert port is not None, out
    base = f"http://127.0.0.1:{port[1]}"
    assert out.count("INFO leaf7 listens on") == 1  # once
    assert f"dashboard: {base}/dashboard/" in out and f"API explorer: {base}/docs" in out
    assert f"data: {data_dir.resolve()} (the embedded Valkey" in out
    assert "LEAF7_PUBLIC_URL is not set" in out  # the warning stays
    assert "no vendor yet" in out
    command = re.search(r"\n.* INFO     (.*vendor create .*)\n", out)
    assert command is not None, out
    # The command as printed (its Discord id filled in) creates the vendor.
    words = shlex.split(command[1].replace("YOUR_DISCORD_ID", "123456789"))
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("LEAF7_")}
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    assert env["LEAF7_DATA_DIR"] == str(data_dir)
    created = subprocess.run(
        words, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=CMD_TIMEOUT
    )
    assert created.returncode == 0, created.stderr
    assert '"discord_id":"123456789"' in created.stdout

    again = _started(data_dir, {"LEAF7_PUBLIC_URL": "https://licence.example"})
    assert "INFO leaf7 listens on" in again
    assert "dashboard: https://licence.example/dashboard/" in again
    assert "no vendor yet" not in again and "vendor create" not in again
    assert "LEAF7_PUBLIC_URL is not set" not in again


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@10.0.0.5:6379/0", "Redis at redis://10.0.0.5:6379 (REDIS_URL)"),
        ("redis+cluster://u:pw@a:1,b:2", "Redis at redis+cluster://a:1,b:2 (REDIS_URL)"),
        ("unix:///run/valkey.sock", "Redis at unix:///run/valkey.sock (REDIS_URL)"),
    ],
)
def test_redis_url_is_shown_without_its_password(url: str, shown: str) -> None:
    out = firstrun.lines(Settings(redis_url=url), "0.0.0.0", 8000, has_vendor=True)  # noqa: S104
    assert out[0] == "leaf7 listens on http://127.0.0.1:8000"
    assert f"data: {shown}" in out
    assert not any("pw" in line for line in out)
