"""The vendor's own account: API key rotation and revocation."""

from aiohttp import web

from handlers import schemas
from handlers.appkeys import SETTINGS, store
from handlers.auth import API_KEY_DIGEST, vendor_operations
from handlers.body import SUCCESS, json_response
from store.models import iso

route = vendor_operations("vendor")


@route(
    "Rotate the API key",
    {200: schemas.RotatedApiKey},
    errors=(403,),
    description="A new API key, shown once. The key that was current keeps working until "
    "previous_key_expires_at (LEAF7_API_KEY_GRACE, default 24 h); keys already in their "
    "grace period keep theirs. Only the current key may rotate: a key in its grace period "
    "gets 403.",
)
async def rotate_api_key(request: web.Request, vendor_id: str) -> web.Response:
    """POST /api/vendor/api_key/rotate: a new API key (shown once); the key that was current
    keeps working for LEAF7_API_KEY_GRACE seconds."""
    grace = request.app[SETTINGS].api_key_grace
    caller = request[API_KEY_DIGEST]
    api_key, expires = await store(request).vendors.rotate_api_key(vendor_id, grace, caller)
    return json_response(
        schemas.RotatedApiKey(api_key=api_key, previous_key_expires_at=iso(expires) or "")
    )


@route(
    "End every previous API key now",
    {200: schemas.Status},
    errors=(403,),
    description="Cuts the grace period of every earlier key short (after a rotation, when the "
    "old key leaked). Only the current key may do this: a key in its grace period gets 403.",
)
async def revoke_previous(request: web.Request, vendor_id: str) -> web.Response:
    """POST /api/vendor/api_key/revoke_previous"""
    await store(request).vendors.revoke_previous(vendor_id, request[API_KEY_DIGEST])
    return json_response(SUCCESS)
