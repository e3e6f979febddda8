"""What an anonymous client can send: deep JSON, IDs with a trailing newline, a body trickled
byte by byte, more connections than its share; and what the server says about itself."""

import asyncio
import dataclasses
import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from handlers.body import MAX_CONTAINERS, MAX_DEPTH, check_depth
from handlers.errors import ApiError
from service.app import create_app
from service.config import Settings
from tests.support.api import EXECUTE, Api, ApiWith, setup_key
from tests.support.processes import create_vendor, serving

DEEP = b'{"project_id": "x", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
TOO_DEEP = {"detail": f"Malformed JSON body: nested deeper than {MAX_DEPTH} levels"}


def test_depth_check() -> None:
    check_depth(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    check_depth(b'{"s": "' + b"[" * 5000 + b'"}')  # brackets inside a string nest nothing
    check_depth(b"[" + b"[]," * 5000 + b"[]]")  # wide is fine
    for body in (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), b"[[]" * 40, DEEP):
        with pytest.raises(ApiError, match="nested deeper"):
            check_depth(body)
    with pytest.raises(ApiError, match="arrays and objects"):
        check_depth(b"[" + b"[]," * MAX_CONTAINERS + b"[]]")


async def test_deep_json_is_a_400_on_every_route_without_a_traceback(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    pid = (await api.project())["project_id"]
    routes = [
        ("POST", EXECUTE),
        ("POST", "/api/vendor/projects"),
        ("PATCH", f"/api/vendor/projects/{pid}"),
        ("PUT", f"/api/vendor/projects/{pid}/source"),
        ("POST", "/api/vendor/keys/buyer"),
        ("POST", "/api/vendor/keys/redeem"),
        ("POST", "/api/vendor/blacklist"),
        ("POST", "/api/vendor/keys/active/extend"),
    ]
    with caplog.at_level(logging.INFO):
        for method, path in routes:
            resp = await api.client.request(method, path, data=DEEP, headers=api.auth)
            assert (resp.status, await resp.json()) == (400, TOO_DEEP), path
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_ids_with_a_trailing_newline_name_nothing(api: Api) -> None:
    pid, kid = await setup_key(api)
    body = {"key_id": kid, "discord_id": "123456789012345678\n"}
    resp = await api.client.post("/api/vendor/keys/redeem", json=body, headers=api.auth)
    assert resp.status == 422
    assert "discord_id" in (await resp.json())["detail"]
    await api.call("GET", f"/api/vendor/keys/buyer/{kid}%0A", status=404)
    await api.call("GET", f"/api/vendor/projects/{pid}%0A", status=404)
    await api.call("GET", f"/api/vendor/keys/buyer?project_id={pid}%0A", status=404)
    await api.call("GET", "/api/vendor/users/123%0A/keys", status=422)
    await api.call("GET", "/api/vendor/keys/active?discord_id=123%0A", status=422)
    resp = await api.client.post(
        EXECUTE, json={"project_id": pid + "\n", "script_key": kid, "hwid": "h"}
    )
    assert (await resp.json())["code"] == "PROJECT_NOT_FOUND"
    # The same IDs without the newline work.
    await api.call("GET", f"/api/vendor/keys/buyer/{kid}")
    await api.redeem(kid, "123456789012345678")


async def _raw(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def test_a_trickled_body_gets_408_and_the_connection_closes(
    api_with: ApiWith, real_redis: Redis
) -> None:
    api = await api_with(real_redis, body_timeout=0.5)
    client = api.client
    port = client.server.port
    assert port is not None
    head = (
        "POST /api/vendor/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {api.api_key}\r\nContent-Length: 100\r\n\r\n"
    )
    for path_head in (head, head.replace("/api/vendor/projects", EXECUTE)):
        t0 = time.monotonic()
        reader, writer = await _raw(port, path_head.encode() + b"{")
        answer = await asyncio.wait_for(reader.read(), timeout=10)  # read() = until closed
        took = time.monotonic() - t0
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"Request body not received within 0.5 s" in answer
        # Waited for the body timeout (behaviour), then answered without hanging.
        assert 0.45 <= took < 0.5 + 5.0, took
    assert await api.call("GET", "/api/vendor/projects") == []  # nothing was created


async def test_the_server_header_names_no_version(
    aiohttp_client: Any, redis_client: Redis, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(create_app(settings, redis=redis_client))
    resp = await client.get("/healthz")
    assert resp.headers["Server"] == "leaf7"
    resp = await client.post(EXECUTE, json={"project_id": "x", "hwid": "h"})
    assert resp.headers["Server"] == "leaf7"  # the one-write loader answer too
    port = client.server.port
    assert port is not None
    with caplog.at_level(logging.DEBUG):
        reader, writer = await _raw(port, b"GARBAGE\r\n\r\n")  # refused by aiohttp's parser
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
    # A client's error is no server error: nothing logged as one, no traceback (aiohttp's
    # own is at DEBUG level, off in production).
    logged = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert not [r for r in logged if r.levelno >= logging.WARNING or r.exc_info]
    assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 ")), answer
    assert b"\r\nServer: leaf7\r\n" in answer
    assert b"aiohttp" not in answer and b"Python" not in answer


async def test_metrics_can_require_a_token(
    aiohttp_client: Any, redis_client: Redis, settings: Settings
) -> None:
    open_ = await aiohttp_client(create_app(settings, redis=redis_client))
    assert (await open_.get("/metrics")).status == 200
    s = dataclasses.replace(settings, metrics_token="s3cret")
    client = await aiohttp_client(create_app(s, redis=redis_client))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        resp = await client.get("/metrics", headers=headers)
        assert (resp.status, await resp.json()) == (401, {"detail": "Not authenticated"})
    resp = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert resp.status == 200
    assert "leaf7_http_requests" in await resp.text()
    assert Settings.from_env({"LEAF7_METRICS_TOKEN": "t"}).metrics_token == "t"


def first_answer(port: int, request: bytes) -> bytes:
    """Sends ``request`` on a new connection: the first bytes answered (b"" when the server
    closes or resets it without an answer)."""
    conn = socket.create_connection(("127.0.0.1", port))
    try:
        conn.settimeout(5)
        conn.sendall(request)
        try:
            return conn.recv(1024)
        except ConnectionResetError:
            return b""
    finally:
        conn.close()


@pytest.mark.real
@pytest.mark.slow
def test_connections_per_ip_are_capped(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    create_vendor(data_dir, "Acme")
    with serving(data_dir, {"LEAF7_MAX_CONN_PER_IP": "3"}) as server:
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        try:
            refused = first_answer(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert refused == b""  # closed without an answer
            # The held connections are served as usual.
            held[0].settimeout(5)
            held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert held[0].recv(1024).startswith(b"HTTP/1.1 200 ")
        finally:
            for conn in held:
                conn.close()
        # Once they are closed, new connections are accepted again.
        deadline = time.monotonic() + 5
        while True:
            request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            answer = first_answer(server.port, request)
            if answer.startswith(b"HTTP/1.1 200 "):
                break
            assert time.monotonic() < deadline, "connections stayed refused"
            time.sleep(0.05)
    assert Settings.from_env({"LEAF7_MAX_CONN_PER_IP": "9"}).max_conn_per_ip == 9
