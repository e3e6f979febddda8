"""The real loader.lua, run by a real Lua 5.1 interpreter against a live server."""

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api, Clock, setup_key

SHIM = Path(__file__).parent / "lua" / "shim.lua"
LUA = "lua5.1"
pytestmark = pytest.mark.lua

HOSTED = """
print("L7RUN|" .. L7_ScriptName .. "|" .. L7_ScriptVersion .. "|" .. tostring(L7_TotalExecutions)
  .. "|" .. tostring(L7_SecondsLeft) .. "|" .. L7_UserNote .. "|" .. L7_LinkedDiscordID)
"""


def test_lua_is_installed() -> None:
    # .ci/run installs lua5.1 and lua-cjson; without them the tests below cannot run.
    assert shutil.which(LUA), "lua5.1 is required (apt-get install lua5.1 lua-cjson)"
    assert shutil.which("curl"), "curl is required"
    probe = subprocess.run([LUA, "-e", "require('cjson')"], capture_output=True, check=False)
    assert probe.returncode == 0, probe.stderr


async def run_loader(api: Api, project_id: str, key: str | None, hwid: str) -> str:
    url = str(api.client.make_url(f"/api/loader/{project_id}/loader.lua"))
    env = {**os.environ, "L7_LOADER_URL": url, "L7_HWID": hwid}
    env.pop("L7_KEY", None)
    if key is not None:
        env["L7_KEY"] = key
    proc = await asyncio.create_subprocess_exec(
        LUA,
        str(SHIM),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_loader_runs_hosted_script_with_macros(real_api: Api, clock: Clock) -> None:
    api = real_api
    pid, kid = await setup_key(api, key_days=0, note='say "hi" ]] \\ end')
    await api.call(
        "PUT", f"/api/vendor/projects/{pid}/source", {"source": HOSTED, "version": "2.0.0"}
    )
    out = await run_loader(api, pid, kid, "pc-1")
    assert out == 'L7RUN|Script Hub|2.0.0|1|Lifetime|say "hi" ]] \\ end|\n'
    out = await run_loader(api, pid, kid, "pc-1")
    assert "|2|Lifetime|" in out
    # A wrong HWID, a wrong key, a banned key and an expired key do not run the script.
    out = await run_loader(api, pid, kid, "pc-2")
    assert out == "WARN [leaf7] Key is locked to another HWID; ask for a HWID reset\n"
    out = await run_loader(api, pid, "wrongkey", "pc-1")
    assert out == "WARN [leaf7] Key is invalid\n"
    await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    out = await run_loader(api, pid, kid, "pc-1")
    assert out == "WARN [leaf7] Key is banned\n"

    [short] = await api.keys(pid, key_days=0, key_minutes=1)
    out = await run_loader(api, pid, short["key_id"], "pc-9")
    assert out.startswith("L7RUN|Script Hub|2.0.0|1|60|")
    clock.advance(61)
    out = await run_loader(api, pid, short["key_id"], "pc-9")
    assert out == "WARN [leaf7] Key has expired\n"


async def test_loader_redeemed_key_shows_discord(real_api: Api) -> None:
    api = real_api
    pid, kid = await setup_key(api, key_days=2)
    await api.redeem(kid, discord_id="80351110224678912")
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": HOSTED})
    out = await run_loader(api, pid, kid, "pc-1")
    fields: list[Any] = out.strip().split("|")
    assert fields[0] == "L7RUN"
    assert fields[2] == "0.0.1"
    assert 2 * 86400 - 5 <= int(fields[4]) <= 2 * 86400
    assert fields[6] == "80351110224678912"


async def test_loader_no_key_set(real_api: Api) -> None:
    api = real_api
    pid, _ = await setup_key(api)
    # script_key is never assigned: the loader sends none and shows the verdict.
    assert await run_loader(api, pid, None, "pc") == "WARN [leaf7] Key is invalid\n"
