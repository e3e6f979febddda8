"""Buyer key, redemption and active key routes."""

from collections.abc import Awaitable, Callable

from aiohttp import web

from handlers import ids, listing, ratelimit, schemas
from handlers.appkeys import SETTINGS, store
from handlers.auth import Route, vendor_operations
from handlers.body import SUCCESS, json_response, read_json
from handlers.errors import ApiError
from handlers.openapi import Param
from handlers.params import (
    PROJECT_QUERY,
    key_id_param,
    project_id_param,
    project_query,
    required_query,
)
from store.licences import Licences
from store.models import ActiveKey, BuyerKey

route = vendor_operations("keys")

DISCORD_QUERY = Param(
    "discord_id",
    ids.DISCORD_ID.json_schema(),
    "Only keys this Discord user redeemed",
    errors=(422,),
)


@route(
    "Generate buyer keys",
    {200: list[BuyerKey]},
    body=schemas.BuyerKeyCreate,
    errors=(403, 404),
    description="Rate limited per vendor (LEAF7_RATE_KEYGEN requests per window) as well.",
)
async def generate(request: web.Request, vendor_id: str) -> web.Response:
    body = await read_json(request, schemas.buyer_key_create)
    project_id = project_id_param(body.project_id)
    settings = request.app[SETTINGS]
    if settings.rate_keygen > 0:
        rl = await store(request).vendors.hit_keygen(
            vendor_id, settings.rate_keygen, settings.rate_window
        )
        ratelimit.check(request, rl)
    created = await store(request).licences.generate(
        vendor_id,
        project_id,
        amount=body.amount,
        key_days=body.key_days,
        key_hours=body.key_hours,
        key_minutes=body.key_minutes,
        note=body.note,
    )
    return json_response(created)


@route("Buyer keys (redeemed ones too)", {200: list[BuyerKey]}, **listing.paged(PROJECT_QUERY))
async def list_buyer(request: web.Request, vendor_id: str) -> web.StreamResponse:
    project_id = project_query(request)
    licences = store(request).licences

    def fetch(cursor: str | None, limit: int) -> Awaitable[tuple[list[BuyerKey], str | None]]:
        return licences.buyer_page(vendor_id, project_id, cursor, limit)

    return await listing.respond(request, fetch)


@route("Delete an unredeemed key", {200: schemas.Status}, errors=(400,))
async def delete_buyer(request: web.Request, vendor_id: str) -> web.Response:
    await store(request).licences.delete_buyer(vendor_id, key_id_param(request))
    return json_response(SUCCESS)


@route(
    "Redeem a buyer key for a Discord user",
    {200: ActiveKey},
    body=schemas.Redeem,
    errors=(404,),
)
async def redeem(request: web.Request, vendor_id: str) -> web.Response:
    body = await read_json(request, schemas.redeem)
    return json_response(
        await store(request).licences.redeem(vendor_id, body.key_id, body.discord_id)
    )


@route(
    "Active (redeemed) keys",
    {200: list[ActiveKey]},
    **listing.paged(PROJECT_QUERY, DISCORD_QUERY),
)
async def list_active(request: web.Request, vendor_id: str) -> web.StreamResponse:
    discord_id = request.query.get("discord_id")
    if discord_id is not None and not ids.DISCORD_ID.valid(discord_id):
        raise ApiError(422, "discord_id: must be a Discord ID (a string of digits)")
    return await active_listing(request, vendor_id, project_query(request), discord_id)


async def active_listing(
    request: web.Request, vendor_id: str, project_id: str | None, discord_id: str | None
) -> web.StreamResponse:
    """Active keys, of one project and/or one Discord user: paged or streamed."""
    licences = store(request).licences

    def fetch(cursor: str | None, limit: int) -> Awaitable[tuple[list[ActiveKey], str | None]]:
        return licences.active_page(vendor_id, project_id, discord_id, cursor, limit)

    return await listing.respond(request, fetch)


@route(
    "Ban a key (and block its HWID), for good or for a time",
    {200: schemas.Status},
    body=schemas.Ban,
    body_required=False,
    description="Without a body (or without `duration`) the ban is permanent and blocks the "
    "key's HWID in the project; with `duration` (seconds) it ends by itself and blocks the key "
    "only. A ban replaces the key's current one.",
)
async def ban(request: web.Request, vendor_id: str) -> web.Response:
    key_id = key_id_param(request)
    body = await read_json(request, schemas.ban) if request.body_exists else schemas.Ban()
    await store(request).licences.ban(vendor_id, key_id, reason=body.reason, duration=body.duration)
    return json_response(SUCCESS)


@route("Lift a key's ban and HWID block", {200: schemas.Status})
async def unban(request: web.Request, vendor_id: str) -> web.Response:
    await store(request).licences.unban(vendor_id, key_id_param(request))
    return json_response(SUCCESS)


@route("Clear a key's HWID (no cooldown)", {200: schemas.Status})
async def reset_hwid(request: web.Request, vendor_id: str) -> web.Response:
    await store(request).licences.reset_hwid(vendor_id, key_id_param(request))
    return json_response(SUCCESS)


@route("Set or clear a key's HWID", {200: schemas.HwidStatus}, body=schemas.HwidUpdate)
async def set_hwid(request: web.Request, vendor_id: str) -> web.Response:
    key_id = key_id_param(request)
    body = await read_json(request, schemas.hwid_update)
    await store(request).licences.set_hwid(vendor_id, key_id, body.new_hwid)
    return json_response({"status": "success", "hwid": body.new_hwid})


@route("One active key", {200: ActiveKey})
async def get_active(request: web.Request, vendor_id: str) -> web.Response:
    return json_response(await store(request).licences.get_active(vendor_id, key_id_param(request)))


@route("One buyer key (redeemed or not)", {200: BuyerKey})
async def get_buyer(request: web.Request, vendor_id: str) -> web.Response:
    return json_response(await store(request).licences.get_buyer(vendor_id, key_id_param(request)))


NoteSetter = Callable[[str, str, str | None], Awaitable[BuyerKey | ActiveKey]]


def _note_route(
    name: str, summary: str, model: type, setter: Callable[[Licences], NoteSetter]
) -> Route:
    """``PATCH`` of one kind of key (``setter`` picks its store method): sets or removes the
    note and answers the key."""

    async def set_note(request: web.Request, vendor_id: str) -> web.Response:
        key_id = key_id_param(request)
        body = await read_json(request, schemas.note_update)
        licences = store(request).licences
        return json_response(await setter(licences)(vendor_id, key_id, body.note))

    set_note.__name__ = name
    return route(summary, {200: model}, body=schemas.NoteUpdate)(set_note)


set_buyer_note = _note_route(
    "set_buyer_note",
    "Set or remove a key's note (redeemed or not)",
    BuyerKey,
    lambda licences: licences.set_buyer_note,
)
set_active_note = _note_route(
    "set_active_note",
    "Set or remove an active key's note",
    ActiveKey,
    lambda licences: licences.set_active_note,
)


@route(
    "Delete every unredeemed key of a project",
    {200: schemas.Deleted},
    query=(
        Param(
            "project_id",
            ids.PROJECT_ID.json_schema(),
            "The project (a UUID; any other value: 404)",
            required=True,
        ),
        Param(
            "redeemed",
            {"type": "string", "enum": ["false"]},
            "Must be false: only unredeemed keys are deleted in bulk",
            required=True,
        ),
    ),
    errors=(404, 422),
)
async def delete_unredeemed(request: web.Request, vendor_id: str) -> web.Response:
    """DELETE /api/vendor/keys/buyer?project_id=...&redeemed=false"""
    project_id = required_query(request, "project_id")
    if request.query.get("redeemed") != "false":
        raise ApiError(422, "redeemed: only redeemed=false (unredeemed keys) can be bulk-deleted")
    deleted = await store(request).licences.delete_unredeemed(
        vendor_id, project_id_param(project_id)
    )
    return json_response({"deleted": deleted})


@route(
    "Add time to every unexpired, non-lifetime active key of a project",
    {200: schemas.Extended},
    body=schemas.Extend,
    errors=(404,),
)
async def extend(request: web.Request, vendor_id: str) -> web.Response:
    """POST /api/vendor/keys/active/extend: more time for every unexpired, non-lifetime key."""
    body = await read_json(request, schemas.extend)
    project_id = project_id_param(body.project_id)
    seconds = body.key_days * 86400 + body.key_hours * 3600 + body.key_minutes * 60
    if seconds == 0:
        raise ApiError(400, "key_days, key_hours, key_minutes: at least one must be positive")
    extended = await store(request).licences.extend(vendor_id, project_id, seconds)
    return json_response({"extended": extended})
