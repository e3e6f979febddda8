"""Signed verdicts, the server side: the signed answer, its canonical bytes, the keys and
their rotation, the pinned loader, and that no private key ever leaves the process."""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from redis.asyncio import Redis

from handlers import schemas, signing, verdicts
from handlers.appkeys import SIGNER
from handlers.loader import _FAILURES
from handlers.luagen import MACROS, loader_lua, macro_prelude
from service import backup
from service.backup import BackupReader, Record
from service.config import Settings
from service.embedded import EmbeddedValkey
from service.secret import signing_secret
from store import keyspace, watermark
from store.models import Execution, Hosted
from tests.support.api import EXECUTE, Api, ApiWith, Clock, setup_key

HOSTED = (
    'print(L7_ScriptName .. "|" .. L7_TotalExecutions .. "|" .. L7_UserNote)\nlocal pct = "100%"\n'
)
NONCE = "0123456789abcdef" * 4
HEX = re.compile(r"^[0-9a-f]+$")


async def post(api: Api, body: dict[str, Any], hwid: str | None = "pc-1") -> tuple[int, bytes]:
    headers = {"Krnl-Hwid": hwid} if hwid else {}
    resp = await api.client.post(EXECUTE, json=body, headers=headers)
    return resp.status, await resp.read()


async def signed_project(api: Api, note: str = "vip") -> tuple[str, str]:
    pid, key = await setup_key(api, key_days=0, note=note)
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": HOSTED})
    return pid, key


def expected_leaf(
    kid: str, pid: str, nonce: str, iat: int, exp: int, key: str, hwid: str, script: str, split: int
) -> bytes:
    """The canonical leaf, written out independently of handlers/signing.py."""
    raw = script.encode()
    sha = hashlib.sha256
    chunk = sha(sha(raw[:split]).digest() + sha(raw[split:]).digest()).hexdigest()
    lines = [
        "leaf7-verdict-v1", kid, pid, "KEY_VALID", nonce, str(iat), str(exp),
        sha(key.encode()).hexdigest(), sha(hwid.encode()).hexdigest(), str(split), chunk,
    ]  # fmt: skip
    return "".join(line + "\n" for line in lines).encode()


def root_of(leaf: bytes, path: list[str]) -> bytes:
    h = hashlib.sha256(b"\x00" + leaf).digest()
    for step in path:
        sibling = bytes.fromhex(step[1:])
        pair = sibling + h if step[0] == "l" else h + sibling
        h = hashlib.sha256(b"\x01" + pair).digest()
    return h


def check_signature(public_key: str, leaf: bytes, sig: dict[str, Any]) -> None:
    message = f"leaf7-batch-v1\n{sig['kid']}\n{root_of(leaf, sig['path']).hex()}\n".encode()
    VerifyKey(bytes.fromhex(public_key)).verify(message, bytes.fromhex(sig["sig"]))


async def test_a_valid_answer_is_signed_over_its_canonical_leaf(api: Api, clock: Clock) -> None:
    clock.freeze()
    pid, key = await signed_project(api)
    info = await api.call("GET", f"/api/vendor/projects/{pid}/signing")
    body = {"project_id": pid, "script_key": key, "nonce": NONCE, "executor": "Synapse Z 1.2"}
    status, raw = await post(api, body)
    assert status == 200
    data = json.loads(raw)
    sig = data.pop("signature")
    # The rest is the unsigned answer, byte for byte (the signature is appended last).
    assert raw.startswith(json.dumps(data, separators=(",", ":")).encode()[:-1] + b',"signature":')
    now = int(clock())
    assert set(sig) == {"v", "kid", "nonce", "iat", "exp", "hwid", "split", "chunk", "path", "sig"}
    assert sig["v"] == 1 and sig["kid"] == info["kid"] and sig["nonce"] == NONCE
    assert sig["iat"] == now and sig["exp"] == now + 60
    assert sig["hwid"] == hashlib.sha256(b"pc-1").hexdigest()
    script = data["script"]
    prelude = macro_prelude(
        {"L7_ScriptName": "Script Hub", "L7_TotalExecutions": 1, "L7_UserNote": "vip"},
        ("L7_ScriptName", "L7_TotalExecutions", "L7_UserNote"),
    )
    assert sig["split"] == len(prelude.encode()) and script == prelude + HOSTED
    leaf = expected_leaf(sig["kid"], pid, NONCE, now, now + 60, key, "pc-1", script, sig["split"])
    assert sig["chunk"] == leaf.split(b"\n")[10].decode()
    check_signature(info["public_key"], leaf, sig)
    # Any other nonce, key, HWID or script: the same signature does not verify.
    for other in (
        expected_leaf(sig["kid"], pid, "f" * 64, now, now + 60, key, "pc-1", script, sig["split"]),
        expected_leaf(sig["kid"], pid, NONCE, now, now + 60, "other", "pc-1", script, sig["split"]),
        expected_leaf(sig["kid"], pid, NONCE, now, now + 60, key, "pc-2", script, sig["split"]),
        expected_leaf(
            sig["kid"], pid, NONCE, now, now + 60, key, "pc-1", script + " ", sig["split"]
        ),
    ):
        with pytest.raises(BadSignatureError):
            check_signature(info["public_key"], other, sig)
    # The next run's answer counts on (the prelude changes; the source's hash is cached).
    status, raw = await post(api, {**body, "nonce": "a" * 32})
    data = json.loads(raw)
    assert "|2|" not in data["script"] and "L7_TotalExecutions = 2" in data["script"]
    sig = data["signature"]
    leaf = expected_leaf(
        sig["kid"], pid, "a" * 32, now, now + 60, key, "pc-1", data["script"], sig["split"]
    )
    check_signature(info["public_key"], leaf, sig)


async def test_answers_checked_together_share_one_signature(api: Api) -> None:
    pid, _ = await setup_key(api, key_days=0)
    keys = [k["key_id"] for k in await api.keys(pid, amount=5, key_days=0)]
    info = await api.call("GET", f"/api/vendor/projects/{pid}/signing")
    signer = api.client.app[SIGNER]
    before = signer.signatures
    bodies = [
        {"project_id": pid, "script_key": k, "nonce": f"{i:032x}"} for i, k in enumerate(keys)
    ]
    answers = await asyncio.gather(*(post(api, b, hwid=f"pc-{i}") for i, b in enumerate(bodies)))
    sigs = [json.loads(raw)["signature"] for _, raw in answers]
    # Every answer verifies through its own path; fewer signatures than answers were made.
    for i, (sig, key) in enumerate(zip(sigs, keys, strict=True)):
        data = json.loads(answers[i][1])
        leaf = expected_leaf(
            sig["kid"], pid, f"{i:032x}", sig["iat"], sig["exp"], key, f"pc-{i}",
            data["script"], sig["split"],
        )  # fmt: skip
        check_signature(info["public_key"], leaf, sig)
    assert signer.signatures - before < len(keys)
    assert max(len(s["path"]) for s in sigs) >= 1
    # /metrics tells operators how many answers shared each signature.
    text = await (await api.client.get("/metrics")).text()
    counts = dict(line.split(" ") for line in text.splitlines() if line.startswith("leaf7_"))
    assert float(counts["leaf7_signed_verdicts_total"]) == signer.leaves >= len(keys)
    assert float(counts["leaf7_verdict_signatures_total"]) == signer.signatures >= 1


def test_the_canonical_bytes() -> None:
    """Golden: changing any of these changes what every loader verifies."""
    leaf = signing.leaf(
        "00112233aabbccdd", "6f0e1b8a-0000-4000-8000-000000000001", "ab" * 16, 1700000000,
        1700000060, b"k" * 64, b"h" * 64, 42, bytes(range(32)).hex().encode(),
    )  # fmt: skip
    assert leaf == (
        b"leaf7-verdict-v1\n00112233aabbccdd\n6f0e1b8a-0000-4000-8000-000000000001\nKEY_VALID\n"
        + b"ab" * 16 + b"\n1700000000\n1700000060\n" + b"k" * 64 + b"\n" + b"h" * 64
        + b"\n42\n" + bytes(range(32)).hex().encode() + b"\n"
    )  # fmt: skip
    assert signing.root_message("00112233aabbccdd", b"\x01" * 32) == (
        b"leaf7-batch-v1\n00112233aabbccdd\n" + b"01" * 32 + b"\n"
    )
    leaves = [b"a", b"b", b"c"]
    root, paths = signing.merkle(leaves)
    node = [hashlib.sha256(b"\x00" + x).digest() for x in leaves]
    ab = hashlib.sha256(b"\x01" + node[0] + node[1]).digest()
    assert root == hashlib.sha256(b"\x01" + ab + node[2]).digest()
    assert paths == [
        ["r" + node[1].hex(), "r" + node[2].hex()],
        ["l" + node[0].hex(), "r" + node[2].hex()],
        ["l" + ab.hex()],
    ]
    for leaf_, path in zip(leaves, paths, strict=True):
        assert root_of(leaf_, path) == root
    assert signing.merkle([b"a"]) == (node[0], [[]])
    # The key of a project and key id: HMAC-SHA256 of the signing secret, then Ed25519.
    seed = hmac.new(b"s" * 32, b"leaf7 ed25519 v1|p|k", hashlib.sha256).digest()
    assert signing.seed(b"s" * 32, "p", "k") == seed
    assert signing.Signer(b"s" * 32).public_key("p", "k") == bytes(SigningKey(seed).verify_key)
    assert bytes(SigningKey(seed).verify_key).hex() == (
        "71a5e88deb098ac5cbc34544708d46fa5605d8df81f7aed9d2580fea596ddbdd"
    )
    # Without LEAF7_SIGNING_SECRET: a domain-separated HMAC of the server secret.
    derived = hmac.new(b"server", b"leaf7 signing secret v1", hashlib.sha256).digest()
    assert signing_secret(Settings(), b"server") == derived
    assert signing_secret(Settings(signing_secret="mine"), b"server") == b"mine"


async def test_failures_are_never_signed(api: Api) -> None:
    pid, key = await signed_project(api)
    cases = [
        ({"project_id": pid, "script_key": "wrong", "nonce": NONCE}, "pc-1", "KEY_INCORRECT"),
        ({"project_id": pid, "script_key": key, "nonce": NONCE}, None, "HWID_MISSING"),
    ]
    for body, hwid, code in cases:
        status, raw = await post(api, body, hwid=hwid)
        assert status == 200 and raw == _FAILURES[code]
    await post(api, {"project_id": pid, "script_key": key}, hwid="pc-1")  # binds pc-1
    status, raw = await post(api, {"project_id": pid, "script_key": key, "nonce": NONCE}, "pc-2")
    assert raw == _FAILURES["KEY_HWID_LOCKED"]
    await api.call("POST", f"/api/vendor/keys/active/{key}/ban")
    status, raw = await post(api, {"project_id": pid, "script_key": key, "nonce": NONCE})
    assert raw == _FAILURES["KEY_BANNED"]


async def test_signing_off_answers_and_loader_as_before(api: Api) -> None:
    project = await api.project(signed_verdicts=False)
    pid = project["project_id"]
    assert project["signed_verdicts"] is False
    [made] = await api.keys(pid, key_days=0)
    key = made["key_id"]
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": HOSTED})
    _, plain = await post(api, {"project_id": pid, "script_key": key})
    assert json.loads(plain)["code"] == "KEY_VALID"
    _, with_nonce = await post(
        api, {"project_id": pid, "script_key": key, "nonce": NONCE, "executor": "X"}
    )
    assert b"signature" not in with_nonce
    second = plain.replace(b"L7_TotalExecutions = 1", b"L7_TotalExecutions = 2")
    assert with_nonce == second.replace(b'"total_executions":1', b'"total_executions":2')
    resp = await api.client.get(f"/api/loader/{pid}/loader.lua")
    base = str(api.client.make_url("")).rstrip("/")
    assert await resp.text() == loader_lua(pid, base)
    # A project from before signed verdicts (no field, no key id) is off until turned on.
    redis = api.store.redis
    await redis.hdel(keyspace.project(pid), "signed_verdicts", "sign_kid", "sign_created")
    got = await api.call("GET", f"/api/vendor/projects/{pid}")
    assert got["signed_verdicts"] is False
    _, raw = await post(api, {"project_id": pid, "script_key": key, "nonce": NONCE})
    assert b"signature" not in raw
    patched = await api.call("PATCH", f"/api/vendor/projects/{pid}", {"signed_verdicts": True})
    assert patched["signed_verdicts"] is True
    assert await redis.hget(keyspace.project(pid), "sign_kid")
    _, raw = await post(api, {"project_id": pid, "script_key": key, "nonce": NONCE})
    assert json.loads(raw)["signature"]["nonce"] == NONCE
    # Without a nonce (a loader from before): the unsigned answer.
    _, raw = await post(api, {"project_id": pid, "script_key": key})
    assert b"signature" not in raw and json.loads(raw)["code"] == "KEY_VALID"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nonce", "abc"),  # too short
        ("nonce", "A" * 32),  # not lowercase hex
        ("nonce", "0" * 130),
        ("kid", "xyz"),
        ("executor", "e" * 101),
        ("executor", 5),
    ],
)
async def test_bad_signing_fields_are_400(api: Api, field: str, value: Any) -> None:
    pid, key = await setup_key(api)
    status, raw = await post(api, {"project_id": pid, "script_key": key, field: value})
    assert status == 400
    assert json.loads(raw)["detail"].startswith("Malformed request:")
    assert field in json.loads(raw)["detail"]


async def test_rotation_and_grace(api: Api, clock: Clock) -> None:
    clock.freeze()
    pid, key = await signed_project(api)
    path = f"/api/vendor/projects/{pid}/signing"
    first = await api.call("GET", path)
    assert set(first) == {"signed_verdicts", "kid", "public_key", "created_at", "previous"}
    assert first["signed_verdicts"] is True and first["previous"] is None
    assert re.fullmatch(r"[0-9a-f]{16}", first["kid"])
    assert re.fullmatch(r"[0-9a-f]{64}", first["public_key"])
    assert await api.call("GET", path) == first  # stable
    rotated = await api.call("POST", f"{path}/rotate")
    assert rotated["kid"] != first["kid"] and rotated["public_key"] != first["public_key"]
    assert rotated["previous"] == {
        "kid": first["kid"],
        "public_key": first["public_key"],
        "created_at": first["created_at"],
        "accepted_until": rotated["previous"]["accepted_until"],
    }
    grace = 30 * 86400
    until = int(clock()) + grace
    assert rotated["previous"]["accepted_until"] == time.strftime(
        "%Y-%m-%dT%H:%M:%S", time.gmtime(until)
    )
    # The loader embeds both keys while in grace, the current one as its KID.
    lua = await (await api.client.get(f"/api/loader/{pid}/loader.lua")).text()
    for k in (first, rotated):
        assert f'["{k["kid"]}"] = "{k["public_key"]}"' in lua
    assert f'local KID = "{rotated["kid"]}"' in lua
    # A loader asking for the previous key (pinned before the rotation) gets it; others the new.
    body = {"project_id": pid, "script_key": key, "nonce": NONCE}
    for asked, signed in ((first["kid"], first), (rotated["kid"], rotated), (None, rotated)):
        _, raw = await post(api, {**body, "kid": asked} if asked else body)
        data = json.loads(raw)
        sig = data["signature"]
        assert sig["kid"] == signed["kid"]
        leaf = expected_leaf(
            sig["kid"],
            pid,
            NONCE,
            sig["iat"],
            sig["exp"],
            key,
            "pc-1",
            data["script"],
            sig["split"],
        )
        check_signature(signed["public_key"], leaf, sig)
    # After the grace period only the new key: in the loader, and in the answers.
    clock.advance(grace + 1)
    after = await api.call("GET", path)
    assert after["previous"] is None and after["kid"] == rotated["kid"]
    lua = await (await api.client.get(f"/api/loader/{pid}/loader.lua")).text()
    assert first["kid"] not in lua and rotated["kid"] in lua
    _, raw = await post(api, {**body, "kid": first["kid"]})
    assert json.loads(raw)["signature"]["kid"] == rotated["kid"]
    # Someone else's project: 404.
    other = await api.as_other()
    await other.call("GET", path, status=404)
    await other.call("POST", f"{path}/rotate", status=404)


async def test_pinned_loader(api: Api) -> None:
    pid, _ = await signed_project(api)
    path = f"/api/vendor/projects/{pid}/loader.lua"
    resp = await api.client.get(path, params={"pinned": "1"}, headers=api.auth)
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == f'attachment; filename="leaf7-loader-{pid}.lua"'
    pinned = await resp.text()
    public = await (await api.client.get(f"/api/loader/{pid}/loader.lua")).text()
    assert pinned == public
    assert "function M.verify" in pinned and "local PUBLIC_KEYS" in pinned
    resp = await api.client.get(path, params={"pinned": "2"}, headers=api.auth)
    assert resp.status == 422
    resp = await api.client.get(path, params={"pinned": "1"})
    assert resp.status == 401
    await api.call("PATCH", f"/api/vendor/projects/{pid}", {"signed_verdicts": False})
    resp = await api.client.get(path, params={"pinned": "1"}, headers=api.auth)
    assert resp.status == 409 and "detail" in await resp.json()
    resp = await api.client.get(path, headers=api.auth)
    assert resp.status == 200 and "M.verify" not in await resp.text()
    other = await api.as_other()
    resp = await api.client.get(path, params={"pinned": "1"}, headers=other.auth)
    assert resp.status == 404


async def _values_of(redis: Redis, name: str) -> bytes:
    kind = await redis.type(name)
    if kind == "hash":
        value: Any = await redis.hgetall(name)
    elif kind == "string":
        value = await redis.get(name)
    elif kind == "stream":
        value = await redis.xrange(name)
    elif kind == "set":
        value = await redis.smembers(name)
    elif kind == "zset":
        value = await redis.zrange(name, 0, -1, withscores=True)
    else:
        value = await redis.lrange(name, 0, -1)
    return repr(value).encode()


async def _all_values(redis: Redis) -> bytes:
    """Every key's name and content."""
    out = []
    async for name in redis.scan_iter(count=1000):
        out += [name.encode(), await _values_of(redis, name)]
    return b"\n".join(out)


async def _backup_contents(file: Path, redis: Redis) -> bytes:
    """A backup file's records, each RESTOREd under a scratch name and read back (a DUMP
    payload may be compressed: grepping the file alone could miss a value), and its bytes."""

    def read() -> tuple[bytes, list[Record]]:
        with BackupReader(file) as reader:
            return file.read_bytes(), list(reader.records())

    raw, records = await asyncio.to_thread(read)
    out = [raw]
    for i, record in enumerate(records):
        scratch = f"scratch:{i}"
        await redis.restore(scratch, 0, record.payload, replace=True)
        out.append(record.key)
        out.append(await _values_of(redis, scratch))
        await redis.delete(scratch)
    return b"\n".join(out)


def _forms(secret: bytes) -> list[bytes]:
    return [
        secret,
        secret.hex().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret),
    ]


@pytest.mark.real
async def test_no_private_key_in_answers_logs_redis_or_backups(
    api_with: ApiWith,
    real_redis: Redis,
    valkey_server: EmbeddedValkey,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    api = await api_with(real_redis)
    seen = []
    pid, key = await signed_project(api)
    path = f"/api/vendor/projects/{pid}/signing"
    for method, url in (
        ("GET", path),
        ("POST", f"{path}/rotate"),
        ("GET", f"/api/vendor/projects/{pid}"),
    ):
        resp = await api.client.request(method, url, headers=api.auth)
        seen.append(await resp.read())
    seen.append(await (await api.client.get(f"/api/loader/{pid}/loader.lua")).read())
    seen.append((await post(api, {"project_id": pid, "script_key": key, "nonce": NONCE}))[1])
    info = json.loads(seen[1])
    signer = api.client.app[SIGNER]
    secrets_ = [signer._secret]
    for kid in (info["kid"], info["previous"]["kid"]):
        seed = signing.seed(signer._secret, pid, kid)
        secrets_ += [seed, bytes(SigningKey(seed)._signing_key)]
    file = tmp_path / "all.l7b"
    await asyncio.to_thread(
        backup.backup, Settings(redis_url=valkey_server.url, data_dir=tmp_path / "d"), file
    )
    dumped = await _backup_contents(file, real_redis)
    # What the backup holds is found this way: a planted value is.
    await real_redis.hset(keyspace.project(pid), "probe", secrets_[1].hex())
    file2 = tmp_path / "probe.l7b"
    await asyncio.to_thread(
        backup.backup, Settings(redis_url=valkey_server.url, data_dir=tmp_path / "d"), file2
    )
    assert secrets_[1].hex().encode() in await _backup_contents(file2, real_redis)
    await real_redis.hdel(keyspace.project(pid), "probe")
    stored = await _all_values(real_redis)
    logs = caplog.text.encode()
    assert info["kid"].encode() in stored and pid.encode() in dumped  # (the haystacks are real)
    for secret in secrets_:
        for form in _forms(secret):
            for name, hay in (
                ("answers", b"".join(seen)),
                ("redis", stored),
                ("backup", dumped),
                ("logs", logs),
            ):
                assert form not in hay, name
    assert "_secret" not in repr(signer) and signer._secret.hex() not in repr(signer)


async def test_dashboard_switches_signing_and_downloads_the_pinned_loader(api: Api) -> None:
    c = api.client
    csrf = re.compile(r'name="csrf" value="([^"]+)"')
    form = await c.get("/dashboard/signin")
    found = csrf.search(await form.text())
    assert found
    data = {"csrf": found.group(1), "api_key": api.api_key}
    resp = await c.post("/dashboard/signin", data=data, allow_redirects=False)
    assert resp.status == 303
    found = csrf.search(await (await c.get("/dashboard/settings")).text())
    assert found
    token = found.group(1)
    # A new project from the form signs (its box is ticked by default).
    form = await c.get("/dashboard/projects")
    assert 'name="signed_verdicts" checked' in await form.text()
    data = {"csrf": token, "name": "Hub", "hwid_reset_cooldown": "86400", "signed_verdicts": "on"}
    resp = await c.post("/dashboard/projects", data=data, allow_redirects=False)
    assert resp.status == 303
    pid = resp.headers["Location"].rsplit("/", 1)[1]
    page = await (await c.get(f"/dashboard/projects/{pid}/script")).text()
    assert f'href="/dashboard/projects/{pid}/loader.lua" download>Download pinned loader' in page
    resp = await c.get(f"/dashboard/projects/{pid}/loader.lua")
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == f'attachment; filename="leaf7-loader-{pid}.lua"'
    public = await (await c.get(f"/api/loader/{pid}/loader.lua")).text()
    assert await resp.text() == public and "PUBLIC_KEYS" in public
    # Unticked in the settings form: off, and no pinned loader.
    data = {"csrf": token, "name": "Hub", "hwid_reset_cooldown": "86400", "is_active": "on"}
    resp = await c.post(f"/dashboard/projects/{pid}", data=data)
    assert resp.status == 200
    assert (await api.call("GET", f"/api/vendor/projects/{pid}"))["signed_verdicts"] is False
    assert (await c.get(f"/dashboard/projects/{pid}/loader.lua")).status == 409
    page = await (await c.get(f"/dashboard/projects/{pid}/script")).text()
    assert "Download pinned loader" not in page


@pytest.mark.parametrize("marked", [False, True])
async def test_the_signed_answer_is_the_unsigned_one_byte_for_byte_plus_its_signature(
    marked: bool,
) -> None:
    """The signed answer is built in one piece (its prelude once, as Lua, JSON-escaped from
    that: handlers/loader.py's _signed): the same bytes as the unsigned answer, whatever the
    names, note and source hold, watermarked or not; its chunk hash is the hash of the script
    the answer carries."""
    body = 'local s = "100%% \\"q\\" \\\\ é\\n"; local t = {1, 2, 3}\nprint(s, t[1] + 0x10)\n'
    source = " ".join(MACROS) + "\n" + "".join(body.replace("%%", "%" * k) for k in range(1, 4))
    keys = watermark.keys_from(b"s" * 32)
    marks = watermark.plan(source, keys) if marked else ""
    hosted = Hosted("7", source, 'Hub "x" \\ é %d\n', "1.0% \x7f", MACROS, marks)
    signer = signing.Signer(b"k" * 32)
    pid = "6f0e1b8a-0000-4000-8000-000000000001"
    for note, discord, expires in (('a "note" \\ é\n%s\x00', "42", 1800000000), (None, None, None)):
        result = Execution(
            code="KEY_VALID", hosted=hosted, discord_id=discord, total_executions=7,
            expires_at=expires, note=note, sign_kid="00112233aabbccdd", premium=False,
        )  # fmt: skip
        req = schemas.ExecuteRequest(project_id=pid, script_key="KEY-1", nonce="ab" * 16)
        bits = watermark.tag_bits(watermark.tag(keys, pid, "KEY-1")) if marked else None
        plain = verdicts.valid(result, 1700000000, bits)
        signed = verdicts.signed(signer, pid, result, req, "pc-1", 1700000000, bits)
        assert signed.startswith(plain[:-1] + b',"signature":{"v":1,')
        data = json.loads(signed)
        assert json.loads(plain) == {k: v for k, v in data.items() if k != "signature"}
        script = data["script"].encode()
        split = data["signature"]["split"]
        chunk = signing.chunk_hash(signing.digest(script[:split]), signing.digest(script[split:]))
        assert data["signature"]["chunk"] == chunk.hex()
        assert script[split:] != source.encode() if marked else script[split:] == source.encode()
