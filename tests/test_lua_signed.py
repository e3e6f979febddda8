"""The real loader.lua of a signing project, run by Lua 5.1 and by Luau in a fake executor
(tests/lua/fake_executor.lua) against answers captured from a real server: only a genuine,
fresh answer for this run's nonce and this exact script runs."""

import asyncio
import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from handlers import signing
from handlers.luagen import lua_string
from tests.support.api import EXECUTE, Api, Clock, setup_key
from tests.support.lua import LUAU

HARNESS = (Path(__file__).parent / "lua" / "fake_executor.lua").read_text()
INTERPRETERS = {"lua5.1": ["lua5.1"], "luau": [str(LUAU), "-O2"]}
pytestmark = pytest.mark.lua

HOSTED = (
    'print("L7RUN|" .. L7_ScriptName .. "|" .. L7_TotalExecutions .. "|" .. L7_UserNote'
    ' .. "|" .. L7_SecondsLeft)\n'
)
REFUSED = "WARN [leaf7] refused the key server's answer: "
REPORT = "/api/loader/report"


def refused(lines: list[str], project_id: str, why: str, reason: str) -> str:
    """The body of the report a refused run sent (its only request after the check), once
    its one line says ``why``."""
    assert len(lines) == 2 and lines[0] == REFUSED + why, lines
    url, _, body = lines[1].removeprefix("REPORT ").partition(" ")
    assert lines[1].startswith("REPORT ") and url.endswith(REPORT)
    assert json.loads(body) == {
        "project_id": project_id,
        "reason": reason,
        "executor": "FakeExec 1.0",
    }
    return body


def test_interpreters_are_installed() -> None:
    assert shutil.which("lua5.1"), "lua5.1 is required (apt-get install lua5.1 lua-bit32)"
    assert Path(LUAU).is_file(), f"{LUAU} is required (see ../shared/tools/luau/README.md)"


async def run_cases(
    interpreter: str, loaders: dict[str, str], cases: list[dict[str, Any]]
) -> dict[str, list[str]]:
    """Runs ``cases`` (name, loader, seed, now, key, answer) in one interpreter process; the
    lines each printed."""
    lines = [HARNESS, "local LOADERS = {}"]
    for name, text in loaders.items():
        lines.append(f"LOADERS[{lua_string(name)}] = {lua_string(text)}")
    for case in cases:
        fields = [
            f"name = {lua_string(case['name'])}",
            f"loader = LOADERS[{lua_string(case['loader'])}]",
            f"seed = {case['seed']}",
            f"now = {case.get('now', 0)}",
            f"key = {lua_string(case['key'])}",
        ]
        if case.get("answer") is not None:
            fields.append(f"answer = {lua_string(case['answer'])}")
        lines.append("RUN({" + ", ".join(fields) + "})")
    with tempfile.TemporaryDirectory() as tmp:  # (luau reads programs from files only)
        program = Path(tmp) / "run.lua"
        program.write_text("\n".join(lines))
        pipe = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_exec(
            *INTERPRETERS[interpreter], str(program), stdout=pipe, stderr=pipe
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    result: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.decode().splitlines():
        if line.startswith("CASE "):
            current = result.setdefault(line[5:], [])
        else:
            current.append(line)
    return result


async def forward(api: Api, captured: list[str], hwid: str) -> tuple[dict[str, Any], str]:
    """The captured request, sent to the server as the executor would (its HWID header)."""
    line, shown = captured
    assert shown == "WARN [leaf7] captured"
    assert line.startswith("REQUEST ")
    body = json.loads(line[8:])
    resp = await api.client.post(EXECUTE, data=line[8:], headers={"Krnl-Hwid": hwid})
    assert resp.status == 200
    return body, await resp.text()


def resign(answer: str, key: str, project_id: str, nonce: str, hwid: str, **changes: Any) -> str:
    """``answer`` signed by a key that is not the project's (its own leaf, a one-leaf tree)."""
    data = json.loads(answer)
    sig = {**data["signature"], **changes}
    leaf = signing.leaf(
        sig["kid"], project_id, nonce, sig["iat"], sig["exp"],
        hashlib.sha256(key.encode()).hexdigest().encode(),
        hashlib.sha256(hwid.encode()).hexdigest().encode(),
        sig["split"], sig["chunk"].encode(),
    )  # fmt: skip
    root = hashlib.sha256(b"\x00" + leaf).digest()
    sig["sig"] = SigningKey.generate().sign(signing.root_message(sig["kid"], root)).signature.hex()
    sig["path"] = []
    return json.dumps({**data, "signature": sig})


@pytest.mark.parametrize("interpreter", ["lua5.1", "luau"])
async def test_only_a_genuine_fresh_answer_runs(
    real_api: Api, clock: Clock, interpreter: str
) -> None:
    api = real_api
    clock.freeze()
    pid, key = await setup_key(api, key_days=0, key_minutes=10, note="vip")
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": HOSTED})
    off = (await api.project(signed_verdicts=False))["project_id"]
    [made_off] = await api.keys(off, key_days=0)
    key_off = made_off["key_id"]
    await api.call("PUT", f"/api/vendor/projects/{off}/source", {"source": HOSTED})
    loaders = {
        "signed": await (await api.client.get(f"/api/loader/{pid}/loader.lua")).text(),
        "off": await (await api.client.get(f"/api/loader/{off}/loader.lua")).text(),
    }
    assert "PUBLIC_KEYS" in loaders["signed"] and "PUBLIC_KEYS" not in loaders["off"]

    captured = await run_cases(
        interpreter,
        loaders,
        [
            {"name": "signed", "loader": "signed", "seed": 11, "key": key},
            {"name": "off", "loader": "off", "seed": 11, "key": key_off},
        ],
    )
    body, genuine = await forward(api, captured["signed"], "pc-1")
    assert re.fullmatch(r"[0-9a-f]{64}", body["nonce"]) and body["executor"] == "FakeExec 1.0"
    assert body["kid"] == json.loads(genuine)["signature"]["kid"]
    body_off, genuine_off = await forward(api, captured["off"], "pc-1")
    assert set(body_off) == {"project_id", "script_key"}  # the plain loader: as before
    data = json.loads(genuine)
    sig = data["signature"]
    nonce, now = body["nonce"], sig["iat"] + 1
    forged = json.dumps(
        {"valid": True, "code": "KEY_VALID", "message": "ok", "script": 'print("L7RUN|forged")'}
    )
    altered = genuine.replace("L7RUN|", "L7RUX|", 1)
    assert altered != genuine
    rechunked = json.loads(altered)
    parts = rechunked["script"].encode()
    split = sig["split"]
    rechunked["signature"]["chunk"] = signing.chunk_hash(
        hashlib.sha256(parts[:split]).digest(), hashlib.sha256(parts[split:]).digest()
    ).hex()
    unknown = json.loads(genuine)
    unknown["signature"]["kid"] = "00000000000000ff"
    signed = {"loader": "signed", "key": key, "seed": 11, "now": now}
    cases = [
        {**signed, "name": "genuine", "answer": genuine},
        {**signed, "name": "forged", "answer": forged},
        {**signed, "name": "replayed", "seed": 12, "answer": genuine},
        {**signed, "name": "altered", "answer": altered},
        {**signed, "name": "rechunked", "answer": json.dumps(rechunked)},
        {**signed, "name": "expired", "now": sig["exp"] + 31, "answer": genuine},
        {**signed, "name": "early", "now": sig["iat"] - 31, "answer": genuine},
        {**signed, "name": "wrong key", "answer": resign(genuine, key, pid, nonce, "pc-1")},
        {**signed, "name": "unknown kid", "answer": json.dumps(unknown)},
        {**signed, "name": "other key", "key": "not-the-key", "answer": genuine},
        {"name": "off genuine", "loader": "off", "key": key_off, "seed": 11, "answer": genuine_off},
        {"name": "off forged", "loader": "off", "key": key_off, "seed": 11, "answer": forged},
    ]
    out = await run_cases(interpreter, loaders, cases)
    assert out["genuine"] == ["L7RUN|Script Hub|1|vip|600"]  # (and no report)
    # Every refusal says why in one line, and reports it to the key server.
    reports = [
        refused(out["forged"], pid, "the answer is not signed", "unsigned"),
        refused(
            out["replayed"], pid, "the answer is for another request (replayed)", "wrong_nonce"
        ),
        refused(out["altered"], pid, "the script was altered", "wrong_chunk"),
        refused(out["rechunked"], pid, "bad signature", "bad_signature"),
        refused(out["expired"], pid, "the answer is stale", "stale"),
        refused(out["early"], pid, "the answer is stale", "stale"),
        refused(out["wrong key"], pid, "bad signature", "bad_signature"),
        refused(
            out["unknown kid"], pid, "signed by an unknown key id 00000000000000ff", "unknown_kid"
        ),
        refused(out["other key"], pid, "bad signature", "bad_signature"),
    ]
    # Signing off: exactly as before (a forged answer runs too: nothing is verified).
    assert out["off genuine"] == ["L7RUN|Script Hub|1||Lifetime"]
    assert out["off forged"] == ["L7RUN|forged"]

    # The reports, sent to the real server: counted per day, each a Critical event.
    for report in reports:
        resp = await api.client.post(REPORT, data=report)
        assert resp.status == 204, await resp.text()
    counts = await api.call("GET", f"/api/vendor/analytics/reports?project_id={pid}&days=1")
    assert counts["total"] == 9
    assert counts["daily"][0]["reasons"] == {
        "unsigned": 1, "unknown_kid": 1, "wrong_nonce": 1, "stale": 2, "wrong_chunk": 1,
        "bad_signature": 3,
    }  # fmt: skip
    events = await api.call("GET", "/api/vendor/metrics/events?limit=100")
    forged = [e for e in events if e["message"].startswith("Forged answer refused")]
    assert len(forged) == 9 and {e["type"] for e in forged} == {"Critical"}
    assert "Forged answer refused: unsigned" in {e["message"] for e in forged}
    # The genuine run counted under its executor's name.
    runs = await api.call("GET", f"/api/vendor/analytics/executors?project_id={pid}")
    assert runs["totals"] == {"fakeexec": 1}


@pytest.mark.parametrize("interpreter", ["lua5.1", "luau"])
async def test_a_pinned_loader_outlives_a_rotation_for_the_grace_period(
    real_api: Api, clock: Clock, interpreter: str
) -> None:
    api = real_api
    clock.freeze()
    pid, key = await setup_key(api, key_days=0)
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": HOSTED})
    resp = await api.client.get(
        f"/api/vendor/projects/{pid}/loader.lua", params={"pinned": "1"}, headers=api.auth
    )
    loaders = {"pinned": await resp.text()}
    await api.call("POST", f"/api/vendor/projects/{pid}/signing/rotate")

    async def once(seed: int) -> list[str]:
        case = {"name": "run", "loader": "pinned", "seed": seed, "key": key}
        captured = await run_cases(interpreter, loaders, [case])
        _, answer = await forward(api, captured["run"], "pc-1")
        now = json.loads(answer)["signature"]["iat"]
        return (await run_cases(interpreter, loaders, [{**case, "now": now, "answer": answer}]))[
            "run"
        ]

    # In grace the server signs with the key the pinned loader asks for (the previous one).
    assert (await once(21))[0].startswith("L7RUN|Script Hub|1|")
    clock.advance(30 * 86400 + 1)
    out = await once(22)
    assert out[0].startswith(REFUSED + "signed by an unknown key id ")
    refused(out, pid, out[0].removeprefix(REFUSED), "unknown_kid")
