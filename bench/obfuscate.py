"""The obfuscation of a 64 KiB hosted script: what each preset costs an upload.

Builds a 64 KiB script from tests/lua/corpus (each file in a ``do ... end`` block, repeated),
obfuscates it with each preset exactly as an upload does (``handlers/obfuscation/run.py``: the
worker process, LuaJIT), and prints per preset the median wall time over the runs, the size
of the output, and whether the output prints what the script prints in Luau.

    python bench/obfuscate.py [--runs 3] [--kib 64]
"""

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from handlers.obfuscation import run  # noqa: E402

CORPUS = sorted((HERE.parent / "tests" / "lua" / "corpus").glob("*.lua"))
LUAU = HERE.parents[1] / "shared" / "tools" / "luau" / "luau"


def script(kib: int) -> str:
    parts: list[str] = []
    size = 0
    while size < kib * 1024:
        block = f"do\n{CORPUS[len(parts) % len(CORPUS)].read_text()}\nend\n"
        parts.append(block)
        size += len(block)
    return "".join(parts)


def luau(text: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
        f.write(text)
        f.flush()
        proc = subprocess.run([str(LUAU), f.name], capture_output=True, text=True, check=False)
    return proc.stdout if proc.returncode == 0 else f"error: {proc.stderr}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kib", type=int, default=64)
    args = parser.parse_args()
    source = script(args.kib)
    expected = luau(source) if LUAU.exists() else None
    print(f"script: {len(source)} bytes ({len(CORPUS)} corpus files, repeated)")
    print(f"{'preset':8} {'median s':>9} {'min s':>7} {'max s':>7} {'output bytes':>13}  luau")
    for preset in run.PRESETS:
        times: list[float] = []
        out = ""
        for _ in range(args.runs):
            t = time.perf_counter()
            out = await run.obfuscated_source(source, preset, (), 600.0)
            times.append(time.perf_counter() - t)
        same = "-" if expected is None else ("same" if luau(out) == expected else "DIFFERS")
        print(
            f"{preset:8} {statistics.median(times):9.2f} {min(times):7.2f} {max(times):7.2f} "
            f"{len(out):13d}  {same}"
        )


if __name__ == "__main__":
    asyncio.run(main())
