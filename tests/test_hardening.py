"""Bounded inputs: every string field has a length limit; HWIDs and notes are stored exactly
as given and never interpreted."""

import dataclasses
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from handlers import schemas
from service.app import create_app
from service.config import Settings
from tests.support.api import Api, Clock, store_of

REQUEST_BODIES: list[type[msgspec.Struct]] = [
    schemas.ProjectCreate,
    schemas.ProjectUpdate,
    schemas.BuyerKeyCreate,
    schemas.Redeem,
    schemas.HwidUpdate,
    schemas.source_update_type(8 * 1024 * 1024),
    schemas.ExecuteRequest,
]


def _strings(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        if node.get("type") == "string":
            out.append((where, node))
        for key, value in node.items():
            out += _strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _strings(value, f"{where}[{i}]")
    return out


def test_every_request_string_field_has_a_length_limit() -> None:
    _, components = msgspec.json.schema_components(REQUEST_BODIES)
    strings = _strings(components, "")
    assert len(strings) >= 15
    unbounded = [where for where, schema in strings if "maxLength" not in schema]
    assert unbounded == []


def test_source_length_is_bounded_by_max_source() -> None:
    decoder = schemas.source_update_decoder(1024)
    assert decoder.decode(b'{"source": "' + b"x" * 1024 + b'"}').source == "x" * 1024
    with pytest.raises(msgspec.ValidationError, match="length <= 1024"):
        decoder.decode(b'{"source": "' + b"x" * 1025 + b'"}')
    assert schemas.source_update_decoder(1024) is decoder  # built once per limit


async def test_source_over_the_limit_is_refused(
    aiohttp_client: Any, redis_client: Redis, clock: Clock, settings: Settings
) -> None:
    app = create_app(dataclasses.replace(settings, max_source=2048), redis=redis_client)
    client = await aiohttp_client(app)
    api = await Api(client, store_of(client)).login()
    pid = (await api.project())["project_id"]
    url = f"/api/vendor/projects/{pid}/source"
    await api.call("PUT", url, {"source": "x" * 2000})
    body = await api.call("PUT", url, {"source": "x" * 2049}, status=400)
    assert "too large" in body["detail"]
    # Escapes make the body longer than the source, never shorter: the body cap implies the
    # field's bound.
    body = await api.call("PUT", url, {"source": "\x00" * 400}, status=400)
    assert (await api.call("GET", f"/api/vendor/projects/{pid}"))["version"] == "0.0.1"


ODD = [
    "  spaced  ",
    "{tag}:*?[]",
    "line\nbreak\ttab",
    "\"quoted\" 'single' \\back",
    "]] .. os.exit() .. [[",
    "%s %d %n",
    "ünïcødé ✓ 指纹",
    "\x00nul\x01",
    "-- comment",
    "x" * 512,
]


@pytest.mark.parametrize("value", ODD, ids=range(len(ODD)))
async def test_hwid_and_note_stored_as_given(api: Api, value: str) -> None:
    pid = (await api.project())["project_id"]
    note = value[:255]
    [key] = await api.keys(pid, note=note)
    assert key["note"] == note
    kid = key["key_id"]
    await api.call("PUT", f"/api/vendor/projects/{pid}/source", {"source": "print(L7_UserNote)"})
    resp = await api.client.post(
        "/api/loader/execute", json={"project_id": pid, "script_key": kid, "hwid": value}
    )
    data = await resp.json()
    assert data["code"] == "KEY_VALID"
    assert data["key"]["note"] == note
    # The note reaches Lua only as an escaped literal: one line, then the source.
    prelude, source = data["script"].split("\n", 1)
    assert prelude.startswith('local L7_UserNote = "') and source == "print(L7_UserNote)"
    active = await api.active(kid)
    assert active["hwid"] == value
    assert active["note"] == note
    # The same HWID again is the same machine; one character off is another.
    again = {"project_id": pid, "script_key": kid, "hwid": value}
    assert (await (await api.client.post("/api/loader/execute", json=again)).json())["valid"]
    other = {"project_id": pid, "script_key": kid, "hwid": value[:-1] + "~"}
    data = await (await api.client.post("/api/loader/execute", json=other)).json()
    assert data["code"] == "KEY_HWID_LOCKED"
    # Set through the vendor API, and banned: the ban blocks exactly that HWID.
    await api.call("PATCH", f"/api/vendor/keys/active/{kid}/hwid", {"new_hwid": value})
    assert (await api.active(kid))["hwid"] == value
    await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    [k2] = await api.keys(pid)
    blocked = {"project_id": pid, "script_key": k2["key_id"], "hwid": value}
    data = await (await api.client.post("/api/loader/execute", json=blocked)).json()
    assert data["code"] == "HWID_BANNED"
