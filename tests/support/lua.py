"""The two interpreters everything leaf7 serves to executors is tested in: Debian's Lua 5.1 and
real Luau (``../shared/tools/luau/luau`` from the repository's root; CI has it at the same
path), and a helper that runs a script file in either and returns what it printed."""

import subprocess
from pathlib import Path

LUAU = Path(__file__).resolve().parents[3] / "shared" / "tools" / "luau" / "luau"
LUA51 = "lua5.1"
CORPUS = sorted((Path(__file__).resolve().parents[1] / "lua" / "corpus").glob("*.lua"))


def command(interpreter: str) -> list[str]:
    """The command line that runs a file in ``interpreter`` ("lua5.1" or "luau")."""
    return [str(LUAU)] if interpreter == "luau" else [LUA51]


def run_file(interpreter: str, text: str, tmp_path: Path, timeout: float = 120) -> str:
    """Writes ``text`` to a file in ``tmp_path``, runs it, and returns what it printed (the
    run must succeed). ``timeout`` only says "does not hang"."""
    script = tmp_path / "script.lua"
    script.write_text(text)
    proc = subprocess.run(
        [*command(interpreter), str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
