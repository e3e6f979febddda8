"""The vendor's own account: API key rotation."""

from aiohttp import web

from handlers import schemas
from handlers.appkeys import SETTINGS
from handlers.common import json_response, store, vendor_route
from handlers.openapi import operation
from store.models import iso


@operation(
    "Rotate the API key",
    {200: schemas.RotatedApiKey},
    description="A new API key, shown once. The key that was current keeps working until "
    "previous_key_expires_at (LEAF7_API_KEY_GRACE, default 24 h); keys already in their "
    "grace period keep theirs.",
    tags=("vendor",),
)
@vendor_route
async def rotate_api_key(request: web.Request, vendor_id: str) -> web.Response:
    """POST /api/vendor/api_key/rotate: a new API key (shown once); the key that was current
    keeps working for LEAF7_API_KEY_GRACE seconds."""
    grace = request.app[SETTINGS].api_key_grace
    api_key, expires = await store(request).vendors.rotate_api_key(vendor_id, grace)
    return json_response(
        schemas.RotatedApiKey(api_key=api_key, previous_key_expires_at=iso(expires) or "")
    )
