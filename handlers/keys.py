"""Buyer key, redemption and active key routes."""

from aiohttp import web

from handlers import ratelimit, schemas
from handlers.common import (
    DISCORD_ID_RE,
    SUCCESS,
    ApiError,
    json_response,
    key_id_param,
    project_id_param,
    read_json,
    store,
    vendor_route,
)
from service.appkeys import SETTINGS


def _project_query(request: web.Request) -> str | None:
    value = request.query.get("project_id")
    return None if value is None else project_id_param(value)


@vendor_route
async def generate(request: web.Request, vendor_id: str) -> web.Response:
    body = await read_json(request, schemas.buyer_key_create)
    project_id = project_id_param(body.project_id)
    settings = request.app[SETTINGS]
    if settings.rate_keygen > 0:
        rl = await store(request).hit_keygen(vendor_id, settings.rate_keygen, settings.rate_window)
        ratelimit.check(request, rl)
    created = await store(request).generate_keys(
        vendor_id,
        project_id,
        amount=body.amount,
        key_days=body.key_days,
        key_hours=body.key_hours,
        key_minutes=body.key_minutes,
        note=body.note,
    )
    return json_response(created)


@vendor_route
async def list_buyer(request: web.Request, vendor_id: str) -> web.Response:
    return json_response(await store(request).list_buyer_keys(vendor_id, _project_query(request)))


@vendor_route
async def delete_buyer(request: web.Request, vendor_id: str) -> web.Response:
    await store(request).delete_buyer_key(vendor_id, key_id_param(request))
    return json_response(SUCCESS)


@vendor_route
async def redeem(request: web.Request, vendor_id: str) -> web.Response:
    body = await read_json(request, schemas.redeem)
    return json_response(await store(request).redeem(vendor_id, body.key_id, body.discord_id))


@vendor_route
async def list_active(request: web.Request, vendor_id: str) -> web.Response:
    discord_id = request.query.get("discord_id")
    if discord_id is not None and not DISCORD_ID_RE.fullmatch(discord_id):
        raise ApiError(422, "discord_id: must be a Discord ID (a string of digits)")
    keys = await store(request).list_active_keys(vendor_id, _project_query(request), discord_id)
    return json_response(keys)


@vendor_route
async def ban(request: web.Request, vendor_id: str) -> web.Response:
    await store(request).ban(vendor_id, key_id_param(request))
    return json_response(SUCCESS)


@vendor_route
async def unban(request: web.Request, vendor_id: str) -> web.Response:
    await store(request).unban(vendor_id, key_id_param(request))
    return json_response(SUCCESS)


@vendor_route
async def reset_hwid(request: web.Request, vendor_id: str) -> web.Response:
    await store(request).reset_hwid(vendor_id, key_id_param(request))
    return json_response(SUCCESS)


@vendor_route
async def set_hwid(request: web.Request, vendor_id: str) -> web.Response:
    key_id = key_id_param(request)
    body = await read_json(request, schemas.hwid_update)
    await store(request).set_hwid(vendor_id, key_id, body.new_hwid)
    return json_response({"status": "success", "hwid": body.new_hwid})
