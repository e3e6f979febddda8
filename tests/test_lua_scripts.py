"""The Lua scripts of store/lua/: every file is a registered script (store/scripts.py) and every
registered script has its file; each script's first line names what it takes from
``_common.lua`` (which store/scripts.py prepends to it), and that list is the truth."""

import ast
import re
from pathlib import Path

import pytest

from store.scripts import Scripts

LUA = Path(__file__).resolve().parent.parent / "store" / "lua"
SCRIPTS_PY = LUA.parent / "scripts.py"
HEADER = re.compile(r"-- uses _common\.lua: (.+)")


def _code(source: str) -> str:
    """Lua source without its comments and with every string literal emptied."""
    source = re.sub(r"--\[(=*)\[.*?\]\1\]", " ", source, flags=re.S)
    source = re.sub(r"\[(=*)\[.*?\]\1\]", '""', source, flags=re.S)
    source = re.sub(r"'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"", '""', source)
    return re.sub(r"--[^\n]*", " ", source)


def _common_names() -> list[str]:
    """The top-level locals of _common.lua (its functions, ``unpack``, its constants)."""
    code = _code((LUA / "_common.lua").read_text("utf-8"))
    found = re.findall(r"^local\s+function\s+(\w+)|^local\s+(\w+)\s*=", code, flags=re.M)
    return [a or b for a, b in found]


def _uses(script: Path, names: list[str]) -> set[str]:
    """The names of ``names`` the script refers to (not as a field, ``table.unpack``, and not
    one it declares itself)."""
    code = _code(script.read_text("utf-8"))
    own = set(re.findall(r"\blocal\s+function\s+(\w+)", code))
    for group in re.findall(r"\blocal\s+([\w\s,]+?)\s*(?:=|\n|$)", code):
        own.update(n.strip() for n in group.split(","))
    return {n for n in names if n not in own and re.search(rf"(?<![\w.:]){n}\b", code)}


def _registered() -> set[str]:
    """The names store/scripts.py loads (its ``_load("name", prelude)`` calls)."""
    tree = ast.parse(SCRIPTS_PY.read_text("utf-8"))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_load"
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }


SCRIPTS = sorted(p for p in LUA.glob("*.lua") if p.name != "_common.lua")


def test_every_lua_file_is_a_registered_script_and_back() -> None:
    files = {p.stem for p in SCRIPTS}
    registered = _registered()
    unloaded, missing = files - registered, registered - files
    assert not unloaded, f"store/lua files that store/scripts.py never loads: {unloaded}"
    assert not missing, f"scripts that store/scripts.py loads but have no file: {missing}"
    assert {s.name for s in Scripts().all()} == registered  # every one of them is loaded


def test_common_helpers_are_found() -> None:
    # The parsing above sees _common.lua's helpers (else every list below would be empty).
    assert {"owned", "event", "role_sync", "hit", "int", "unpack"} <= set(_common_names())


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_each_script_lists_what_it_takes_from_common(script: Path) -> None:
    first = script.read_text("utf-8").partition("\n")[0]
    header = HEADER.fullmatch(first)
    assert header, f"{script.name}: line 1 must be '-- uses _common.lua: a, b' (or: nothing)"
    listed = header.group(1).strip()
    declared = set() if listed == "nothing" else {n.strip() for n in listed.split(",")}
    used = _uses(script, _common_names())
    assert declared == used, (
        f"{script.name} lists {sorted(declared)} but uses {sorted(used)} from _common.lua"
    )
