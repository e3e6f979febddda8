"""Self-service routes: what the Discord bot calls, with the vendor's API key, on behalf of
one Discord user."""

from aiohttp import web

from handlers import ids, listing, schemas
from handlers.appkeys import store
from handlers.auth import vendor_operations
from handlers.body import json_response, read_json
from handlers.errors import ApiError
from handlers.keys import active_listing
from handlers.params import PROJECT_QUERY, project_id_param, project_query
from store.models import ActiveKey

route = vendor_operations("self-service")


def _discord_id(request: web.Request) -> str:
    discord_id = request.match_info["discord_id"]
    if not ids.DISCORD_ID.valid(discord_id):
        raise ApiError(422, "discord_id: must be a Discord ID (a string of digits)")
    return discord_id


@route("A Discord user's active keys", {200: list[ActiveKey]}, **listing.paged(PROJECT_QUERY))
async def keys(request: web.Request, vendor_id: str) -> web.StreamResponse:
    """GET /api/vendor/users/{discord_id}/keys[?project_id=]: the user's active keys."""
    discord_id = _discord_id(request)
    return await active_listing(request, vendor_id, project_query(request), discord_id)


@route(
    "Self-service HWID reset (honours the project's cooldown)",
    {200: schemas.SelfResetResult, 429: schemas.CooldownDetail},
    body=schemas.SelfReset,
    errors=(403, 404),
)
async def reset_hwid(request: web.Request, vendor_id: str) -> web.Response:
    """POST /api/vendor/users/{discord_id}/reset_hwid {"project_id"}: honours the cooldown."""
    discord_id = _discord_id(request)
    body = await read_json(request, schemas.self_reset)
    project_id = project_id_param(body.project_id)
    reset = await store(request).users.self_reset_hwid(vendor_id, project_id, discord_id)
    return json_response({"status": "success", "keys_reset": len(reset)})
