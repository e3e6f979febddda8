"""The vendor-wide blacklist: HWIDs and client IPs refused by every project's loader check."""

import ipaddress

from aiohttp import web

from handlers import schemas
from handlers.common import SUCCESS, json_response, read_json, store, vendor_route
from handlers.errors import ApiError
from handlers.openapi import operation
from store.blacklist import BlacklistEntry


@operation("The vendor's blacklist", {200: list[BlacklistEntry]}, tags=("blacklist",))
@vendor_route
async def list_(request: web.Request, vendor_id: str) -> web.Response:
    return json_response(await store(request).blacklist.list(vendor_id))


@operation(
    "Blacklist a HWID and/or client IP in every project",
    {200: BlacklistEntry},
    body=schemas.BlacklistCreate,
    tags=("blacklist",),
)
@vendor_route
async def add(request: web.Request, vendor_id: str) -> web.Response:
    body = await read_json(request, schemas.blacklist_create)
    if not body.ip and not body.hwid:
        raise ApiError(400, "Must provide either IP or HWID")
    ip = None
    if body.ip:
        try:
            ip = str(ipaddress.ip_address(body.ip.strip()))  # canonical form, as peers appear
        except ValueError:
            raise ApiError(400, "ip: not an IP address") from None
    entry = await store(request).blacklist.add(vendor_id, ip, body.hwid or None, body.reason)
    return json_response(entry)


@operation("Remove a blacklist entry", {200: schemas.Status}, errors=(404,), tags=("blacklist",))
@vendor_route
async def delete(request: web.Request, vendor_id: str) -> web.Response:
    entry_id = request.match_info["entry_id"]
    await store(request).blacklist.delete(vendor_id, entry_id[:64])
    return json_response(SUCCESS)
