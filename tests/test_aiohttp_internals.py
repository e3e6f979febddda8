"""The private internals of aiohttp that handlers/aiohttp_internals.py reaches (and those
the classes leaf7 derives from aiohttp's rely on): each one still there, with the shape leaf7
uses. An aiohttp upgrade that moves one fails here, by name, instead of as a Server header
with versions, a loader answer without its cookies or a shutdown that cuts requests."""

import asyncio

from aiohttp import web, web_response
from pytest_aiohttp import AiohttpClient

from handlers import aiohttp_internals
from handlers.wire import SERVER, WireResponse
from service.conncap import CappedSite


async def test_the_server_header(aiohttp_client: AiohttpClient) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    client = await aiohttp_client(app)
    assert isinstance(vars(web_response)["SERVER_SOFTWARE"], str)
    try:
        aiohttp_internals.set_server_header("probe")
        async with client.get("/") as resp:
            assert resp.headers.getall("Server") == ["probe"]
        async with client.get("/nowhere") as resp:  # aiohttp's own 404
            assert resp.status == 404 and resp.headers.getall("Server") == ["probe"]
    finally:
        aiohttp_internals.set_server_header(SERVER)  # as handlers/wire.py set it
    async with client.get("/") as resp:
        assert resp.headers.getall("Server") == [SERVER]


def test_cookies_are_seen_without_creating_the_jar() -> None:
    response = web.StreamResponse()
    assert response._cookies is None
    assert not aiohttp_internals.has_cookies(response)
    assert response._cookies is None, "not created by the look"
    response.cookies  # noqa: B018  (reading the property creates an empty jar)
    assert not aiohttp_internals.has_cookies(response)
    response.set_cookie("a", "b")
    assert aiohttp_internals.has_cookies(response)


async def test_a_connection_says_when_a_request_is_in_progress(
    aiohttp_client: AiohttpClient,
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/", slow)
    client = await aiohttp_client(app)
    server = client.server.runner.server
    assert server is not None

    async def get() -> str:
        async with client.get("/") as resp:
            return await resp.text()

    call = asyncio.ensure_future(get())
    await asyncio.wait_for(entered.wait(), 30)
    conns = list(server.connections)
    assert [aiohttp_internals.request_in_progress(c) for c in conns] == [True]
    release.set()
    assert await asyncio.wait_for(call, 30) == "done"
    assert [aiohttp_internals.request_in_progress(c) for c in conns] == [False]
    assert conns == list(server.connections), "kept alive: the same connection"


def test_what_leafs_subclasses_take_from_aiohttps() -> None:
    # WireResponse's own attributes: none of them shadows one of StreamResponse's.
    own = set(vars(WireResponse(b"X: 1\r\n", b"body")))
    theirs = set(vars(web.StreamResponse())) | set(dir(web.StreamResponse))
    assert {"_head", "_payload", "_wire", "_writer", "_empty"} <= own
    assert not {"_head", "_payload", "_wire", "_writer", "_empty"} & theirs
    # CappedSite sets BaseSite's _server (its stop() closes it) and reads _runner, _backlog.
    assert {"_runner", "_server", "_backlog"} <= set(web.BaseSite.__slots__)
    assert issubclass(CappedSite, web.BaseSite)
