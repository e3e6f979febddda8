"""Macro values are emitted as Lua literals that a real Lua parser reads back exactly."""

import itertools
import subprocess

import msgspec
import pytest

from handlers import schemas
from handlers.luagen import MACROS, lua_string, macro_prelude, used_macros
from handlers.verdicts import valid as valid_body
from store.models import Execution, Hosted, iso

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


@pytest.mark.lua
@pytest.mark.parametrize("value", HOSTILE)
def test_literal_round_trips_in_real_lua(value: str) -> None:
    literal = lua_string(value)
    assert literal.isascii()
    assert "\n" not in literal
    assert lua_eval(f"io.write({literal})") == value.encode()


@pytest.mark.lua
def test_prelude_with_hostile_values_round_trips() -> None:
    values: dict[str, str | int | bool] = {
        "L7_LinkedDiscordID": '123"]]\n',
        "L7_ScriptName": "name\\",
        "L7_ScriptVersion": "1.0.0",
        "L7_TotalExecutions": 7,
        "L7_SecondsLeft": "Lifetime",
        "L7_UserNote": HOSTILE[-1] + HOSTILE[5],
        "L7_IsPremium": False,
    }
    chunk = macro_prelude(values, MACROS)
    chunk += "".join(f'io.write(tostring({m}), "\\255\\254")\n' for m in MACROS)
    out = lua_eval(chunk).split(b"\xff\xfe")[:-1]
    expected = [str(values[m]).lower() if m == "L7_IsPremium" else str(values[m]) for m in MACROS]
    assert out == [e.encode() for e in expected]


def test_used_macros() -> None:
    assert used_macros("print(L7_UserNote, L7_ScriptName)") == "L7_ScriptName,L7_UserNote"
    assert used_macros("x = L7_UserNoteX or MyL7_ScriptName") == ""
    assert used_macros("") == ""


@pytest.mark.parametrize("expires_at", [None, 1_766_793_000, 1_700_000_000])
@pytest.mark.parametrize("macros", [MACROS, ("L7_SecondsLeft", "L7_UserNote"), ()])
def test_valid_verdict_bytes_equal_the_reference_encoding(
    expires_at: int | None, macros: tuple[str, ...]
) -> None:
    """The loader builds a valid verdict from pre-encoded parts; it must be byte for byte what
    encoding a ValidVerdict whose script is macro_prelude + source gives, whatever the values."""
    # (% and %-codes too: the verdict is one %-format of a per-revision template)
    hostile = [
        'evil"]]\n\\', "50% %s %b %%d", "", "12345", "ü\x00\x7f\r", "Lifetime", "a b", "--[[",
        "\\u0000",
    ]  # fmt: skip
    source = 'print("hi %d %s %%b")\n\tx = "é \\" ]]"\n'
    now = 1_764_193_000
    encoder = msgspec.json.Encoder()
    for note, discord_id, name, version in itertools.product(
        hostile, hostile[:4], hostile[:3], ["1.0.0", 'v"2']
    ):
        hosted = Hosted("5", source, name, version, macros)
        result = Execution(
            code="KEY_VALID",
            hosted=hosted,
            discord_id=discord_id or None,
            total_executions=7,
            expires_at=expires_at,
            note=note or None,
        )
        left: str | int = "Lifetime" if expires_at is None else max(0, expires_at - now)
        values: dict[str, str | int | bool] = {
            "L7_IsPremium": True,
            "L7_LinkedDiscordID": discord_id,
            "L7_ScriptName": name,
            "L7_ScriptVersion": version,
            "L7_TotalExecutions": 7,
            "L7_SecondsLeft": left,
            "L7_UserNote": note,
        }
        reference = schemas.ValidVerdict(
            valid=True,
            code="KEY_VALID",
            message="Key is valid",
            script=macro_prelude(values, macros) + source,
            key=schemas.KeyInfo(
                expires_at=iso(expires_at),
                seconds_left=None if expires_at is None else int(left),
                total_executions=7,
                discord_id=discord_id or None,
                note=note or None,
            ),
        )
        assert valid_body(result, now) == encoder.encode(reference)
