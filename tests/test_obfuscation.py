"""Optional obfuscation (handlers/obfuscation): every preset's output of every corpus script
(and of a script of the spellings a rewrite can get wrong) prints exactly what the script
prints, in Luau and in Lua 5.1; medium and strong leave no string literal in the clear; a
source that is not Lua 5.1 (Luau-only syntax) fails with the parser's reason; over HTTP, the
`obfuscation` setting obfuscates uploads once, the loader check serves the obfuscated
revision, and a failed job leaves the previous revision served and says why."""

import re
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from handlers.luagen import macro_prelude
from handlers.obfuscation import JOBS, run
from store import keyspace
from store.models import OBFUSCATION_LOST
from tests.support.api import Api, execute
from tests.support.dashboard import sign_in
from tests.support.lua import CORPUS, run_file

TIMEOUT = 120.0  # "does not hang" (a corpus script takes well under a second)
SOURCES = {p.stem: p.read_text() for p in CORPUS}
COMBINED = "".join(f"do\n{text}\nend\n" for text in SOURCES.values())


def lua(interpreter: str, text: str, tmp_path: Path) -> str:
    return run_file(interpreter, text, tmp_path)


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) >= 10


@pytest.mark.lua
@pytest.mark.parametrize("preset", run.PRESETS)
@pytest.mark.parametrize("name", SOURCES)
async def test_obfuscated_corpus_prints_the_same(preset: str, name: str, tmp_path: Path) -> None:
    source = SOURCES[name]
    obfuscated = await run.obfuscated_source(source, preset, (), TIMEOUT)
    assert obfuscated != source
    # Every preset's output is Lua 5.1 as well as Luau.
    for interpreter in ("luau", "lua5.1"):
        assert lua(interpreter, obfuscated, tmp_path) == lua(interpreter, source, tmp_path)
    if preset != "light":
        # No quoted literal of the source is left in the clear (the decoder's call instead).
        literals = {m.group(0) for m in re.finditer(r"([\"'])[^\"'\\\n]{3,}\1", source)}
        assert not [lit for lit in literals if lit in obfuscated]


# The spellings a rewrite of literals gets wrong: strings as call arguments (on the next line
# too), after keywords, in long brackets; escapes; numbers with unary minus (Lua 5.1 keeps one
# constant for 0 and -0: "-0" and "1/0" read the first zero written), "..", "^", hex, keys.
EDGE = r"""local function f(...) return select("#", ...), ... end
local t = {[1] = "one", [2]="two", k = 'kay', ["sp ace"] = [==[long ]] "quoted" \n]==]}
print(f"x", f'y', f[[z]], f{1}, t[1], t [2], t["sp ace"], t.k)
print(f
"next line")
local s = "a" print(s:upper(), ("b"):rep(3), #"four", ("%d|%5.2f"):format(42, 1/3))
print(-2^2, - -1, 2^-1, 1 ..2, 10 .."", 0x10, 0xff, 1e3, 1.5e2, 2^53, 9007199254740993)
print(-0, 1/0, -1/0)
print(3 % -2, -3 % 2, 2147483647, 2147483648, 4294967296, 0.1 + 0.2, 100000000000000)
print("\0\1\255" == string.char(0, 1, 255), "tab\tq\"\'\\", "\65\066\0677", "multi\
line", [[
first newline skipped]], "")
local function g() return"r" end print(g(), (g()))
local x = 5 print(x-1, x - -1, -x, not nil, x..x, x.."s", -x^2)
local acc = "" for i = 10, 1, -3 do acc = acc .. i .. " " end print(acc)
print(string.format("%q", "a\nb"), ("x"):byte(), ("abc"):sub(-2), ("abc"):find("b", 1, true))
local obj = {v = 3} function obj:get(k) return self.v + (k or 0) end print(obj:get(), obj:get(2))
"""


@pytest.mark.lua
@pytest.mark.parametrize("preset", run.PRESETS)
async def test_tricky_spellings_print_the_same(preset: str, tmp_path: Path) -> None:
    for _ in range(3):  # each run draws another key, other names, other sums
        obfuscated = await run.obfuscated_source(EDGE, preset, (), TIMEOUT)
        for interpreter in ("luau", "lua5.1"):
            assert lua(interpreter, obfuscated, tmp_path) == lua(interpreter, EDGE, tmp_path)


MACRO_SOURCE = """\
local args = select("#", ...)
print(L7_ScriptName, L7_TotalExecutions, L7_IsPremium, args)
local function greet(who) return "hi " .. who .. " from " .. L7_ScriptName end
print(greet("ana"))
"""


@pytest.mark.lua
@pytest.mark.parametrize("preset", run.PRESETS)
async def test_macros_reach_the_obfuscated_script(preset: str, tmp_path: Path) -> None:
    macros = ("L7_ScriptName", "L7_TotalExecutions", "L7_IsPremium")
    prelude = macro_prelude(
        {"L7_ScriptName": 'Hub "9"', "L7_TotalExecutions": 7, "L7_IsPremium": True}, macros
    )
    obfuscated = await run.obfuscated_source(MACRO_SOURCE, preset, macros, TIMEOUT)
    assert "greet" not in obfuscated
    assert ("hi " in obfuscated) is (preset == "light")  # medium, strong: strings encoded
    for interpreter in ("luau", "lua5.1"):
        out = lua(interpreter, prelude + obfuscated, tmp_path)
        assert out == lua(interpreter, prelude + MACRO_SOURCE, tmp_path)
        assert out == 'Hub "9"\t7\ttrue\t0\nhi ana from Hub "9"\n'


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("local x = = 1\n", "line 1: unexpected symbol near '='"),
        # Luau-only syntax: the obfuscator reads Lua 5.1.
        ("local n = 1\nn += 1\n", "line 2: '=' expected near '+'"),
        ("for i = 1, 3 do\n if i > 1 then continue end\nend\n", "line 2: '=' expected near 'end'"),
        ("local n: number = 1\n", "line 1: unexpected symbol near ':'"),
        ("print(`n = {1}`)\n", "line 1: unexpected symbol near '`'"),
        ("print(0b101)\n", "line 1: malformed number"),
    ],
)
async def test_a_source_it_cannot_parse_fails_with_the_reason(source: str, reason: str) -> None:
    for macros in ((), ("L7_ScriptName",)):  # the macros' head does not move the line
        with pytest.raises(run.ObfuscationFailed) as failed:
            await run.obfuscated_source(source, "medium", macros, TIMEOUT)
        assert str(failed.value) == f"obfuscation needs Lua 5.1 syntax: {reason}"


async def test_a_job_over_the_timeout_is_killed() -> None:
    with pytest.raises(run.ObfuscationFailed, match="LEAF7_OBFUSCATE_TIMEOUT"):
        await run.obfuscate(COMBINED, "strong", 0.01)


# ---- over HTTP ------------------------------------------------------------------------------

SOURCE = (
    'local t = {3, 1, 2}\ntable.sort(t)\nprint("sorted", table.concat(t, ","), L7_ScriptName)\n'
)


async def upload(api: Api, pid: str, source: str, status: int) -> dict[str, Any]:
    project: dict[str, Any] = await api.call(
        "PUT", f"/api/vendor/projects/{pid}/source", {"source": source}, status=status
    )
    return project


async def settled(api: Api, pid: str) -> dict[str, Any]:
    """The project once this instance's jobs ended."""
    await api.client.app[JOBS].idle()
    project: dict[str, Any] = await api.call("GET", f"/api/vendor/projects/{pid}")
    return project


def hosted(script: str) -> str:
    """The served script without the L7_* prelude."""
    lines = script.splitlines(keepends=True)
    while lines and lines[0].startswith("local L7_"):
        lines.pop(0)
    return "".join(lines)


async def test_uploads_are_obfuscated_once_and_served(api: Api, tmp_path: Path) -> None:
    project = await api.project(obfuscation="medium")
    pid = project["project_id"]
    assert project["obfuscation"] == "medium" and project["obfuscation_job"] is None
    key = (await api.keys(pid))[0]["key_id"]

    queued = await upload(api, pid, SOURCE, 202)
    assert queued["obfuscation_job"]["status"] in ("pending", "running")
    assert queued["version"] == "0.0.0"  # served: nothing yet
    done = await settled(api, pid)
    assert done["obfuscation_job"]["status"] == "done" and done["obfuscation_job"]["error"] is None
    assert done["version"] == done["obfuscation_job"]["version"] == "0.0.1"
    assert done["obfuscation_job"]["finished_at"] is not None

    verdict = await execute(api, pid, key)
    assert verdict["valid"] is True
    served = hosted(verdict["script"])
    assert served == await api.store.core.call("GET", keyspace.project_source(pid))
    assert "local t = " not in served and "sorted" not in served
    assert await api.store.core.call("GET", keyspace.project_original(pid)) == SOURCE
    out = lua("luau", verdict["script"], tmp_path)
    assert out == "sorted\t1,2,3\tScript Hub\n"
    # The same revision on every check: obfuscated once, not per run.
    assert (await execute(api, pid, key))["script"] == verdict["script"]

    # A new preset obfuscates the last upload again; off serves the upload itself.
    changed = await api.call("PATCH", f"/api/vendor/projects/{pid}", {"obfuscation": "strong"})
    assert changed["obfuscation"] == "strong" and changed["obfuscation_job"]["status"] == "pending"
    assert (await settled(api, pid))["obfuscation_job"]["status"] == "done"
    again = hosted((await execute(api, pid, key))["script"])
    assert again not in (served, SOURCE)
    assert lua("luau", (await execute(api, pid, key))["script"], tmp_path) == out
    off = await api.call("PATCH", f"/api/vendor/projects/{pid}", {"obfuscation": "off"})
    assert off["obfuscation"] == "off" and off["obfuscation_job"] is None
    assert hosted((await execute(api, pid, key))["script"]) == SOURCE
    assert await api.store.core.call("GET", keyspace.project_original(pid)) is None
    # Off: an upload is stored as it is (200).
    plain = await upload(api, pid, "print(1)\n", 200)
    assert plain["obfuscation_job"] is None


async def test_a_failed_job_keeps_the_previous_revision_and_says_why(api: Api) -> None:
    pid = (await api.project(obfuscation="strong"))["project_id"]
    key = (await api.keys(pid))[0]["key_id"]
    await upload(api, pid, SOURCE, 202)
    good = await settled(api, pid)
    assert good["obfuscation_job"]["status"] == "done"
    served = (await execute(api, pid, key))["script"]

    await upload(api, pid, "local x = = 1\n", 202)
    failed = await settled(api, pid)
    assert failed["obfuscation_job"]["status"] == "failed"
    assert failed["obfuscation_job"]["error"] == (
        "obfuscation needs Lua 5.1 syntax: line 1: unexpected symbol near '='"
    )
    assert failed["version"] == good["version"]
    assert (await execute(api, pid, key))["script"] == served
    events = await api.store.core.call("XRANGE", keyspace.events(pid), "-", "+")
    messages = [dict(zip(f[::2], f[1::2], strict=True))["message"] for _, f in events]
    assert any(m.startswith("Obfuscation failed: ") for m in messages)


async def test_a_timeout_fails_the_job(api_with: Any, redis_client: Redis, settings: Any) -> None:
    api = await api_with(redis_client, obfuscate_timeout=0.01)
    pid = (await api.project(obfuscation="medium"))["project_id"]
    await upload(api, pid, SOURCE, 202)
    failed = await settled(api, pid)
    assert failed["obfuscation_job"]["status"] == "failed"
    assert "LEAF7_OBFUSCATE_TIMEOUT" in failed["obfuscation_job"]["error"]
    assert failed["version"] == "0.0.0"


async def test_a_job_whose_instance_stopped_is_failed_not_running(api: Api) -> None:
    pid = (await api.project(obfuscation="light"))["project_id"]
    await upload(api, pid, SOURCE, 202)
    await settled(api, pid)
    # What a job left behind by an instance that died looks like: running, lease ended.
    await api.store.core.call(
        "HSET", keyspace.project(pid), "obf_status", "running", "obf_deadline", "1"
    )
    project = await api.call("GET", f"/api/vendor/projects/{pid}")
    assert project["obfuscation_job"]["status"] == "failed"
    assert project["obfuscation_job"]["error"] == OBFUSCATION_LOST


async def test_a_newer_upload_wins_over_an_older_job(api: Api, tmp_path: Path) -> None:
    pid = (await api.project(obfuscation="light"))["project_id"]
    key = (await api.keys(pid))[0]["key_id"]
    await upload(api, pid, 'print("first")\n', 202)
    await upload(api, pid, 'print("second")\n', 202)
    assert (await settled(api, pid))["obfuscation_job"]["status"] == "done"
    assert lua("luau", (await execute(api, pid, key))["script"], tmp_path) == "second\n"


async def test_bad_presets_are_422(api: Api) -> None:
    body = await api.call(
        "POST", "/api/vendor/projects", {"name": "x", "obfuscation": "max"}, status=422
    )
    assert "obfuscation" in body["detail"]
    pid = (await api.project())["project_id"]
    body = await api.call("PATCH", f"/api/vendor/projects/{pid}", {"obfuscation": True}, status=422)
    assert "obfuscation" in body["detail"]


def test_settings_read_the_timeout() -> None:
    from service.config import Settings

    assert Settings.from_env({"LEAF7_OBFUSCATE_TIMEOUT": "2.5"}).obfuscate_timeout == 2.5
    assert Settings.from_env({}).obfuscate_timeout == 60.0


async def test_the_dashboard_sets_the_preset_and_shows_the_job(api: Api) -> None:
    c = api.client
    token = await sign_in(c, api.api_key)
    h = {"X-CSRF-Token": token}
    pid = (await api.project())["project_id"]
    form = await (await c.get(f"/dashboard/projects/{pid}")).text()
    assert 'name="obfuscation"' in form and '<option value="off" selected>' in form
    resp = await c.post(
        f"/dashboard/projects/{pid}",
        data={"name": "Script Hub", "is_active": "on", "obfuscation": "light"},
        headers=h,
    )
    assert resp.status == 200 and '<option value="light" selected>' in await resp.text()
    assert (await api.call("GET", f"/api/vendor/projects/{pid}"))["obfuscation"] == "light"

    resp = await c.post(f"/dashboard/projects/{pid}/script", data={"source": SOURCE}, headers=h)
    assert resp.status == 200 and "it is being obfuscated" in await resp.text()
    await settled(api, pid)
    page = await (await c.get(f"/dashboard/projects/{pid}/script")).text()
    # The editor holds the vendor's own source, the status the job's end.
    assert "table.sort(t)" in page
    assert "last job <strong>done</strong> (served as version 0.0.1)" in page

    await c.post(f"/dashboard/projects/{pid}/script", data={"source": "local = 1"}, headers=h)
    await settled(api, pid)
    page = await (await c.get(f"/dashboard/projects/{pid}/script")).text()
    assert "last job <strong>failed</strong>" in page
    assert "obfuscation needs Lua 5.1 syntax: line 1: " in page


@pytest.mark.parametrize("preset", ["light", "strong"])
async def test_watermarks_go_into_the_obfuscated_text(
    api: Api, tmp_path: Path, preset: str
) -> None:
    pid = (await api.project(obfuscation=preset, watermark=True))["project_id"]
    keys = [k["key_id"] for k in await api.keys(pid, amount=2)]
    await upload(api, pid, COMBINED, 202)
    assert (await settled(api, pid))["obfuscation_job"]["status"] == "done"
    obfuscated = await api.store.core.call("GET", keyspace.project_source(pid))
    expected = lua("luau", COMBINED, tmp_path)
    copies = []
    for i, key in enumerate(keys):
        script = (await execute(api, pid, key, hwid=f"hwid-{i}"))["script"]
        copies.append(hosted(script))
        assert lua("luau", script, tmp_path) == expected
    assert copies[0] != copies[1] and obfuscated not in copies
    for key, copy in zip(keys, copies, strict=True):
        resp = await api.client.post(
            "/api/vendor/leaks/identify",
            data=copy.encode(),
            headers={**api.auth, "Content-Type": "text/plain"},
        )
        assert resp.status == 200 and (await resp.json())["key_id"] == key
