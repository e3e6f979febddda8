"""Self-service routes: what the Discord bot calls, with the vendor's API key, on behalf of
one Discord user."""

from aiohttp import web

from handlers import ids, schemas
from handlers.common import json_response, project_id_param, read_json, store, vendor_route
from handlers.errors import ApiError
from handlers.keys import PROJECT_QUERY
from handlers.openapi import operation
from store.models import ActiveKey


def _discord_id(request: web.Request) -> str:
    discord_id = request.match_info["discord_id"]
    if not ids.DISCORD_ID.valid(discord_id):
        raise ApiError(422, "discord_id: must be a Discord ID (a string of digits)")
    return discord_id


@operation(
    "A Discord user's active keys",
    {200: list[ActiveKey]},
    query=(PROJECT_QUERY,),
    errors=(404, 422),
    tags=("self-service",),
)
@vendor_route
async def keys(request: web.Request, vendor_id: str) -> web.Response:
    """GET /api/vendor/users/{discord_id}/keys[?project_id=]: the user's active keys."""
    discord_id = _discord_id(request)
    value = request.query.get("project_id")
    project_id = None if value is None else project_id_param(value)
    rows = await store(request).licences.list_active(vendor_id, project_id, discord_id)
    return json_response(rows)


@operation(
    "Self-service HWID reset (honours the project's cooldown)",
    {200: schemas.SelfResetResult, 429: schemas.CooldownDetail},
    body=schemas.SelfReset,
    errors=(403, 404),
    tags=("self-service",),
)
@vendor_route
async def reset_hwid(request: web.Request, vendor_id: str) -> web.Response:
    """POST /api/vendor/users/{discord_id}/reset_hwid {"project_id"}: honours the cooldown."""
    discord_id = _discord_id(request)
    body = await read_json(request, schemas.self_reset)
    project_id = project_id_param(body.project_id)
    reset = await store(request).users.self_reset_hwid(vendor_id, project_id, discord_id)
    return json_response({"status": "success", "keys_reset": len(reset)})
