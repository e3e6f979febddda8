"""The loader's one-write answer (handlers/wire.py): byte for byte what aiohttp's own path sends,
on a real server and a raw socket."""

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from handlers.wire import WireResponse
from tests.support.api import Api

EXECUTE = "/api/loader/execute"
Response = tuple[str, list[tuple[str, str]], bytes]  # status line, headers, body
AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


async def exchange(client: TestClient[Any, Any], raw: bytes, count: int = 1) -> list[Response]:
    """Sends ``raw`` on one new connection and reads ``count`` responses off it."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(raw)
        await writer.drain()
        answers = []
        for _ in range(count):
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            status, *lines = head[:-4].split("\r\n")
            headers = [(n, v) for n, _, v in (line.partition(": ") for line in lines)]
            length = int(dict(headers).get("Content-Length", "0"))
            answers.append((status, headers, await reader.readexactly(length)))
        return answers
    finally:
        writer.close()


def post(body: bytes, version: str = "1.1", extra: str = "") -> bytes:
    return (
        f"POST {EXECUTE} HTTP/{version}\r\nHost: leaf7\r\nContent-Type: application/json\r\n"
        f"X-Request-ID: wire-test-1\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def without(headers: list[tuple[str, str]], *names: str) -> list[tuple[str, str]]:
    return [(n, v) for n, v in headers if n not in names]


@pytest.mark.parametrize("hwid", ["pc-1", None], ids=["valid", "hwid-missing"])
async def test_matches_aiohttp_byte_for_byte(api: Api, hwid: str | None) -> None:
    """HTTP/1.1 keep-alive takes the one-write path; ``Connection: close`` and HTTP/1.0 take
    aiohttp's. Same status line, headers (in order) and body, apart from what must differ."""
    pid = (await api.project())["project_id"]
    [key] = await api.keys(pid, key_days=0)
    request = {"project_id": pid, "script_key": key["key_id"], "hwid": hwid}
    body = json.dumps({k: v for k, v in request.items() if v is not None}).encode()
    [(status, headers, answer)] = await exchange(api.client, post(body))
    [(c_status, c_headers, c_answer)] = await exchange(
        api.client, post(body, extra="Connection: close\r\n")
    )
    [(h_status, h_headers, h_answer)] = await exchange(
        api.client, post(body, "1.0", "Connection: keep-alive\r\n")
    )
    assert status == c_status == "HTTP/1.1 200 OK"
    assert h_status == "HTTP/1.0 200 OK"
    names = [n for n, _ in headers]
    # A check without a HWID is answered before the limiter: no limit headers.
    limited = ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"] if hwid else []
    assert names == ["Content-Type", *limited, "X-Request-ID", "Content-Length", "Date", "Server"]
    # What may differ: the clock, what remains of the limit (one check later), and how the
    # connection goes on (aiohttp says so when it is not HTTP/1.1 keep-alive).
    varying = ("Date", "X-RateLimit-Remaining")
    same = without(headers, *varying)
    assert without(c_headers, *varying) == [*same, ("Connection", "close")]
    assert without(h_headers, *varying) == [*same, ("Connection", "keep-alive")]
    assert dict(headers)["X-Request-ID"] == "wire-test-1"
    for date in (dict(headers)["Date"], dict(c_headers)["Date"]):  # aiohttp's format
        assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", date)
    assert dict(headers)["Content-Type"] == "application/json"
    assert int(dict(headers)["Content-Length"]) == len(answer)
    if hwid is None:
        assert answer == c_answer == h_answer
        assert json.loads(answer)["code"] == "HWID_MISSING"
    else:  # the run count goes up by one per check
        runs = [json.loads(a)["key"]["total_executions"] for a in (answer, c_answer, h_answer)]
        assert runs == [1, 2, 3]
        assert answer.replace(b"= 1\\n", b"= 2\\n").replace(b":1,", b":2,") == c_answer


async def test_keep_alive_and_pipelined_requests(api: Api) -> None:
    """Three checks written at once on one connection: three answers, in order, and the
    connection stays open for more."""
    pid = (await api.project())["project_id"]
    [key] = await api.keys(pid, key_days=0)
    body = json.dumps({"project_id": pid, "script_key": key["key_id"], "hwid": "pc"}).encode()
    answers = await exchange(api.client, post(body) * 3, count=3)
    runs = [json.loads(a)["key"]["total_executions"] for _, _, a in answers]
    assert runs == [1, 2, 3]
    assert all("Connection" not in dict(h) for _, h, _ in answers)


def wire_app(
    handler_headers: dict[str, str] | None = None, status: int = 200, wire: bool = True
) -> web.Application:
    """A bare app whose route answers with a WireResponse (or aiohttp's Response, to compare);
    a middleware sets the status and adds headers."""

    async def route(request: web.Request) -> web.StreamResponse:
        if not wire:
            return web.Response(body=b"hello", content_type="text/plain")
        return WireResponse(b"Content-Type: text/plain\r\n", b"hello")

    @web.middleware
    async def add(request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        response.set_status(status)
        response.headers.update(handler_headers or {})
        return response

    app = web.Application(middlewares=[add])
    app.router.add_get("/x", route)
    return app


@pytest.mark.parametrize("wire", [True, False], ids=["wire", "aiohttp"])
async def test_header_values_cannot_inject(aiohttp_client: AiohttpClient, wire: bool) -> None:
    """A CR or LF in a header added later is refused (ValueError) and nothing is written: the
    connection closes, as with aiohttp's own responses."""
    for evil in ({"X-Evil": "a\r\nInjected: yes"}, {"X-Evil": "a\nInjected: yes"},
                 {"X-Evil\rInjected": "yes"}):  # fmt: skip
        client = await aiohttp_client(wire_app(evil, wire=wire))
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        # (an answer would come at once; aiohttp keeps a connection that answered open)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()


async def test_status_and_added_headers(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(wire_app({"X-Extra": "1"}, status=201))
    [(status, headers, body)] = await exchange(client, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == "HTTP/1.1 201 Created"
    names = [n for n, _ in headers]
    assert names == ["Content-Type", "X-Extra", "Content-Length", "Date", "Server"]
    assert body == b"hello"


async def test_head_and_empty_statuses_send_no_body(aiohttp_client: AiohttpClient) -> None:
    """HEAD (and 204/304) go through aiohttp's path, which sends no body."""
    client = await aiohttp_client(wire_app())
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 5\r\n" in head
    # The next bytes are the GET's answer: the HEAD's carried no body.
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 OK\r\n")
    assert await reader.readexactly(5) == b"hello"
    writer.close()
    client2 = await aiohttp_client(wire_app(status=204))
    [(status, headers, body)] = await exchange(client2, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == "HTTP/1.1 204 No Content"
    assert "Content-Length" not in dict(headers)
    assert body == b""


async def test_response_signals_run(aiohttp_client: AiohttpClient) -> None:
    """The app's on_response_prepare receivers see the one-write answer too."""
    app = wire_app()

    async def stamp(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Signal"] = "seen"

    app.on_response_prepare.append(stamp)
    client = await aiohttp_client(app)
    [(_, headers, body)] = await exchange(client, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
    assert dict(headers)["X-Signal"] == "seen"
    assert body == b"hello"


@pytest.mark.parametrize("version", ["1.1", "1.0"])
async def test_prepared_twice(aiohttp_client: AiohttpClient, version: str) -> None:
    """A handler may prepare the answer itself; aiohttp prepares it again: one set of
    headers either way, on both paths (on the wire and in the response object)."""
    made: list[WireResponse] = []

    async def route(request: web.Request) -> web.StreamResponse:
        response = WireResponse(b"Content-Type: text/plain\r\n", b"hello")
        made.append(response)
        await response.prepare(request)
        return response

    app = web.Application()
    app.router.add_get("/x", route)
    client = await aiohttp_client(app)
    raw = f"GET /x HTTP/{version}\r\nHost: t\r\nConnection: keep-alive\r\n\r\n".encode()
    [(status, headers, body)] = await exchange(client, raw)
    assert status == f"HTTP/{version} 200 OK"
    names = [n for n, _ in headers]
    assert names.count("Content-Type") == 1
    assert names.count("Content-Length") == 1
    assert body == b"hello"
    assert len(made[0].headers.getall("Content-Type", [])) <= 1
