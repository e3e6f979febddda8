"""Discord role sync over the HTTP API: the vendor's bot (service/rolesync.py) long-polls the
role changes of the vendor's own projects and acknowledges the ones it applied (store/roles.py
holds the queues; docs/discord-bot.md#role-sync)."""

import asyncio
import math

from aiohttp import web

from handlers import schemas
from handlers.appkeys import SETTINGS, store
from handlers.auth import vendor_operations
from handlers.body import json_response, read_json
from handlers.errors import ApiError
from handlers.listing import limit_query
from handlers.openapi import Param
from store.roles import RoleChange

route = vendor_operations("role sync")

MAX_WAIT = 30
MAX_LIMIT = 100
DEFAULT_LIMIT = 50
# Seconds between reads of the queues while a long poll waits: short non-blocking reads, never
# a blocking XREADGROUP on the shared auto-pipelined connection (it would hold every command
# queued behind it, loader checks included).
POLL = 0.25

WAIT = Param(
    "wait",
    {"type": "number", "minimum": 0, "maximum": MAX_WAIT, "default": 0},
    f"Seconds to wait for a change when there is none yet (0 to {MAX_WAIT}; default 0: answer "
    "at once)",
    errors=(422,),
)
LIMIT = Param(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    f"Changes per answer at most (1 to {MAX_LIMIT}, default {DEFAULT_LIMIT})",
    errors=(422,),
)


def _wait(request: web.Request) -> float:
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_WAIT:  # (also nan)
        raise ApiError(422, f"wait: must be a number of seconds from 0 to {MAX_WAIT}")
    return value


@route(
    "Role changes for the vendor's Discord bot (long poll)",
    {200: list[RoleChange]},
    query=(WAIT, LIMIT),
    description="Discord roles to grant (`grant` true: PUT) or remove (DELETE "
    "`/guilds/{guild_id}/members/{discord_id}/roles/{role_id}`) for the vendor's projects, and "
    "for the projects it deleted; `grant` is decided from the user's keys when the change is "
    "handed out. Waits up to `wait` seconds for one when there is none (an empty array then). "
    "Acknowledge each change with POST /api/vendor/role_sync/ack once Discord answered: a "
    "change not acknowledged within LEAF7_ROLE_LEASE seconds (default 60) is handed out again. "
    "Users whose keys expire are found by the same call.",
)
async def changes(request: web.Request, vendor_id: str) -> web.Response:
    """GET /api/vendor/role_sync/changes?wait=&limit=: the vendor's role changes."""
    wait, limit = _wait(request), limit_query(request, MAX_LIMIT, DEFAULT_LIMIT)
    roles = store(request).roles
    lease = request.app[SETTINGS].role_lease
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        found = await roles.changes(vendor_id, limit, lease)
        left = deadline - loop.time()
        gone = request.transport is None or request.transport.is_closing()  # (the bot left)
        if found or left <= 0 or gone:
            return json_response(found)
        await asyncio.sleep(min(POLL, left))


@route(
    "Acknowledge applied role changes",
    {200: schemas.RoleAckResult},
    body=schemas.RoleAck,
    description="The change_ids the bot applied (Discord answered). A change_id that is not "
    "one of the vendor's pending changes (malformed, another vendor's, acknowledged already) "
    "is ignored; `acked` counts the others.",
)
async def ack(request: web.Request, vendor_id: str) -> web.Response:
    """POST /api/vendor/role_sync/ack {"change_ids": [...]}."""
    body = await read_json(request, schemas.role_ack)
    acked = await store(request).roles.ack(vendor_id, body.change_ids)
    return json_response(schemas.RoleAckResult(acked=acked))
