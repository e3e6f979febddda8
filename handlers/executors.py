"""Executor names for the executions-by-executor counts (docs/api.md#executor-analytics).

The loader sends what ``identifyexecutor()`` (or ``getexecutorname()``) said, name and version
("Synapse X 2.1.3"). The counts are per name, not per build, and a loader may send anything:
a name is lower-cased, trimmed, its version dropped and mapped to a known executor's name when
it is one ("synapse x" -> "synapse"); anything else is kept as sent, reduced to a few safe
characters. No name, or nothing left: ``unknown``. The script bounds what remains (at most
``store.checks.EXECUTOR_CAP`` names per project and hour, the rest counted as ``other``).
"""

import functools
import re

UNKNOWN = "unknown"
OTHER = "other"
MAX_LEN = 32

# Known executors: the name counted, then the other spellings (after lower-casing and dropping
# the version) that are the same executor. One with no other spelling (krnl, fluxus, solara...)
# needs no entry: a name that is no alias is counted as it is.
KNOWN: dict[str, tuple[str, ...]] = {
    "synapse": ("synapse x", "synapse z", "synapsex", "syn"),
    "script-ware": ("scriptware", "script ware", "sw"),
    "delta": ("delta x",),
    "arceus x": ("arceus", "arceusx", "arceus x neo"),
    "awp": ("awp.gg",),
    "trigon": ("trigon evo",),
    "oxygen u": ("oxygen", "oxygenu"),
}
_ALIASES = {alias: name for name, aliases in KNOWN.items() for alias in aliases}
# A trailing version: "2.1.3", "v2", "build 5", "(x64)"...
_VERSION = re.compile(r"(\s+(v(ersion)?\.?\s*)?\d[\w.\-+]*|\s*\([^()]*\)|\s+build\s*\S+)+$")
_UNSAFE = re.compile(r"[^a-z0-9 ._\-]+")
_SPACES = re.compile(r"\s+")


@functools.lru_cache(maxsize=1024)
def normalise(sent: str | None) -> str:
    """The name a run is counted under."""
    if not sent:
        return UNKNOWN
    name = _SPACES.sub(" ", sent.lower()).strip()
    name = _VERSION.sub("", name).strip()
    name = _UNSAFE.sub("", name).strip(" ._-")[:MAX_LEN].strip(" ._-")
    if not name:
        return UNKNOWN
    return _ALIASES.get(name, name)
