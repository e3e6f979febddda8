"""The vendor-wide blacklist: HWIDs and client IPs refused by every project's loader check."""

from collections.abc import Awaitable

from aiohttp import web

from handlers import listing, schemas
from handlers.appkeys import store
from handlers.auth import vendor_operations
from handlers.body import SUCCESS, json_response, read_json
from handlers.errors import ApiError
from store.blacklist import BlacklistEntry, normalise_ip

route = vendor_operations("blacklist")


@route("The vendor's blacklist", {200: list[BlacklistEntry]}, **listing.paged())
async def list_(request: web.Request, vendor_id: str) -> web.StreamResponse:
    blacklist = store(request).blacklist

    def fetch(cursor: str | None, limit: int) -> Awaitable[tuple[list[BlacklistEntry], str | None]]:
        return blacklist.page(vendor_id, cursor, limit)

    return await listing.respond(request, fetch)


@route(
    "Blacklist a HWID and/or client IP or network in every project",
    {200: BlacklistEntry},
    body=schemas.BlacklistCreate,
    description="`ip`: an address or a CIDR network (IPv4 or IPv6), stored normalised: "
    "IPv4-mapped IPv6 as IPv4, host bits cleared (`10.0.0.1/8` is `10.0.0.0/8`). Anything "
    "else is 422.",
)
async def add(request: web.Request, vendor_id: str) -> web.Response:
    body = await read_json(request, schemas.blacklist_create)
    if not body.ip and not body.hwid:
        raise ApiError(400, "Must provide either IP or HWID")
    ip = None
    if body.ip:
        try:
            ip = normalise_ip(body.ip)  # canonical form, as clients appear
        except ValueError:
            raise ApiError(
                422, "ip: not an IP address or CIDR network (1.2.3.4, 10.0.0.0/8, 2001:db8::/32)"
            ) from None
    entry = await store(request).blacklist.add(vendor_id, ip, body.hwid or None, body.reason)
    return json_response(entry)


@route("Remove a blacklist entry", {200: schemas.Status}, errors=(404,))
async def delete(request: web.Request, vendor_id: str) -> web.Response:
    entry_id = request.match_info["entry_id"]
    await store(request).blacklist.delete(vendor_id, entry_id[:64])
    return json_response(SUCCESS)
