"""Macro values are emitted as Lua literals that a real Lua parser reads back exactly."""

import subprocess

import pytest

from handlers.luagen import MACROS, lua_string, macro_prelude, used_macros

HOSTILE = [
    "",
    "plain",
    'quote " and \\" escaped',
    "]] end os.exit(1) --[[",
    "back\\slash\\",
    "new\nline\r\n and \0 nul",
    "\\065 not an escape",
    "unicode: héllo ✓ 🔑",
    "'); os.execute('rm -rf /') --",
    "".join(chr(i) for i in range(1, 128)),
]


def lua_eval(chunk: str) -> bytes:
    proc = subprocess.run(["lua5.1", "-"], input=chunk.encode(), capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("value", HOSTILE)
def test_literal_round_trips_in_real_lua(value: str) -> None:
    literal = lua_string(value)
    assert literal.isascii()
    assert "\n" not in literal
    assert lua_eval(f"io.write({literal})") == value.encode()


def test_prelude_with_hostile_values_round_trips() -> None:
    values: dict[str, str | int] = {
        "L7_LinkedDiscordID": '123"]]\n',
        "L7_ScriptName": "name\\",
        "L7_ScriptVersion": "1.0.0",
        "L7_TotalExecutions": 7,
        "L7_SecondsLeft": "Lifetime",
        "L7_UserNote": HOSTILE[-1] + HOSTILE[5],
    }
    chunk = macro_prelude(values, MACROS)
    chunk += "".join(f'io.write({m}, "\\255\\254")\n' for m in MACROS)
    out = lua_eval(chunk).split(b"\xff\xfe")[:-1]
    assert out == [str(values[m]).encode() for m in MACROS]


def test_used_macros() -> None:
    assert used_macros("print(L7_UserNote, L7_ScriptName)") == "L7_ScriptName,L7_UserNote"
    assert used_macros("x = L7_UserNoteX or MyL7_ScriptName") == ""
    assert used_macros("") == ""
