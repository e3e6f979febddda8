"""Running leaf7's obfuscator (``obfuscate.lua``: the vendored LuaSrcDiet, MIT, see
``vendor/luasrcdiet/README.md``, and leaf7's own passes) on one source.

Each run is a process of its own (``worker.py``, a Lua interpreter) working on files in a
temporary folder, killed when it takes longer than the timeout: the event loop only waits.
"""

import asyncio
import re
import secrets
import sys
import tempfile
from importlib import resources
from pathlib import Path

PRESETS = ("light", "medium", "strong")

_HERE = Path(str(resources.files("handlers.obfuscation")))
WORKER = _HERE / "worker.py"
OBFUSCATOR = _HERE / "obfuscate.lua"
VENDOR = _HERE / "vendor"
# Where a Lua error names its file and line: ".../luasrcdiet/optlex.lua:123: " (not the
# vendor's business).
_LOCATION = re.compile(r"^(?:[^\n]*?\.lua:\d+: )+")


class ObfuscationFailed(Exception):
    """Why a source was not obfuscated (shown to the vendor as the job's error)."""


def preset_file(preset: str) -> Path:
    if preset not in PRESETS:
        raise ValueError(f"unknown obfuscation preset {preset!r}")
    return _HERE / "presets" / f"{preset}.lua"


async def obfuscate(source: str, preset: str, limit: float) -> str:
    """``source`` (Lua 5.1 syntax) obfuscated with ``preset`` within ``limit`` seconds, or
    ``ObfuscationFailed``. The output runs in Lua 5.1 and Luau."""
    config = preset_file(preset)
    with tempfile.TemporaryDirectory(prefix="leaf7-obfuscate-") as tmp:
        given, out = Path(tmp) / "source.lua", Path(tmp) / "out.lua"
        given.write_bytes(source.encode("utf-8", "surrogatepass"))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # nothing of the environment or the working folder on its path
            str(WORKER),
            str(OBFUSCATOR),
            str(VENDOR),
            str(config),
            str(secrets.randbelow(2**31)),  # the revision's key, names, table order
            str(given),
            str(out),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ObfuscationFailed(
                f"took longer than {limit:g} s (LEAF7_OBFUSCATE_TIMEOUT)"
            ) from None
        except BaseException:  # cancelled (shutdown): the process goes too
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0 or not out.exists():
            raise ObfuscationFailed(reason(err.decode("utf-8", "replace")))
        return out.read_bytes().decode("utf-8", "replace")


def reason(stderr: str) -> str:
    """The obfuscator's error, without Lua file locations, on one line of at most 300
    characters."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    text = _LOCATION.sub("", lines[0]) if lines else "the obfuscator stopped"
    text = text.strip()
    return text[:300] or "the obfuscator stopped"


def wrap_source(source: str, macros: tuple[str, ...]) -> str:
    """The obfuscator's input. The L7_* macros are ``local``s the loader's prelude puts
    before the hosted source; the obfuscator would take them for globals, so its input
    receives them as arguments (and the source keeps its own ``...``). The head takes no line
    of its own: a parse error's line number is the source's."""
    if not macros:
        return source
    return (
        f"local {', '.join(macros)} = ... return (function(...) {source}\n"
        f"end)(select({len(macros) + 1}, ...))\n"
    )


def wrap_output(obfuscated: str, macros: tuple[str, ...]) -> str:
    """The hosted text of ``obfuscated`` (of ``wrap_source``): called with the macros."""
    if not macros:
        return obfuscated
    return f"return (function(...)\n{obfuscated}\nend)({', '.join(macros)}, ...)\n"


async def obfuscated_source(source: str, preset: str, macros: tuple[str, ...], limit: float) -> str:
    """What loaders receive for ``source`` under ``preset``: the hosted revision."""
    return wrap_output(await obfuscate(wrap_source(source, macros), preset, limit), macros)
