"""A local webhook receiver for the in-process tests (an aiohttp app on aiohttp_server)."""

from typing import Any

from aiohttp import web


async def hook_receiver(aiohttp_server: Any) -> tuple[str, list[dict[str, Any]]]:
    """Its URL and the JSON bodies it received, in order (each answered 204)."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    return str(server.make_url("/hook")), received
