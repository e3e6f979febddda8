"""Free keys, the API: the vendor's settings of a project, the get-key funnel, and the
loader's way to its get-key page (``POST /api/loader/getkey``)."""

import dataclasses
import secrets

import msgspec
from aiohttp import web

from handlers import ids, schemas
from handlers.appkeys import SETTINGS, store
from handlers.auth import vendor_operations
from handlers.body import json_response, read_json
from handlers.clientip import base_url, client_ip, rate_subject
from handlers.errors import ApiError
from handlers.freekeys.links import getkey_url
from handlers.freekeys.providers import PROVIDERS
from handlers.loader import hwid_from_headers
from handlers.openapi import Param, operation
from handlers.params import PROJECT_QUERY, project_id_param, project_query
from handlers.ratelimit import too_many
from store.errors import ProjectNotFound
from store.freekeys import FUNNEL_DAYS, FreeSecretMissing, iso_day

route = vendor_operations("free keys")

_settings_decode = msgspec.json.Decoder(schemas.FreeKeysSettings).decode

DAYS_QUERY = Param(
    "days",
    {"type": "integer", "minimum": 1, "maximum": FUNNEL_DAYS},
    f"Days up to today (UTC), 1 to {FUNNEL_DAYS} (default 7)",
)


def settings_of(config: str) -> schemas.FreeKeysSettings | None:
    """The stored settings (no secrets), None before the first save."""
    return _settings_decode(config) if config else None


def _out(
    request: web.Request, project_id: str, config: str, stored: dict[str, str]
) -> schemas.FreeKeysOut:
    s = settings_of(config)
    if s is None:
        return schemas.FreeKeysOut(
            enabled=False, key_hours=24, keys_per_day=1, min_seconds=10, checkpoints=[],
            turnstile=None, allow_extend=False, max_extends=1,
        )  # fmt: skip
    base = f"{base_url(request)}/getkey/{project_id}"
    checkpoints = []
    for k, c in enumerate(s.checkpoints):
        provider = PROVIDERS[c.provider]
        out = schemas.FreeCheckpointOut(
            provider=c.provider,
            link=c.link,
            link_id=getattr(c, "link_id", None),
            has_token=f"secret:{k}" in stored,
            return_url=f"{base}/return/{k}{provider.return_query()}",
        )
        postback = stored.get(f"postback:{k}")
        if provider.needs_postback and postback:
            out.postback_url = f"{base}/postback/{postback}"
        checkpoints.append(out)
    return schemas.FreeKeysOut(
        enabled=s.enabled,
        key_hours=s.key_hours,
        keys_per_day=s.keys_per_day,
        min_seconds=s.min_seconds,
        checkpoints=checkpoints,
        turnstile=schemas.FreeTurnstileOut(site_key=s.turnstile.site_key) if s.turnstile else None,
        allow_extend=s.allow_extend,
        max_extends=s.max_extends,
    )


@route(
    "A project's free keys: settings and the URLs to paste at each provider",
    {200: schemas.FreeKeysOut},
    description="Secrets (Linkvertise tokens, the Turnstile secret) are never returned; "
    "`return_url` is each checkpoint's destination at its provider, `postback_url` a "
    "LootLabs checkpoint's postback (docs/free-keys.md).",
)
async def get_settings(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    return json_response(await read_settings(request, vendor_id, project_id))


async def read_settings(
    request: web.Request, vendor_id: str, project_id: str
) -> schemas.FreeKeysOut:
    """The vendor's settings of a project as the API answers them (the dashboard's too)."""
    config, stored = await store(request).freekeys.settings(vendor_id, project_id)
    return _out(request, project_id, config, stored)


@route(
    "Set a project's free keys (ad checkpoints)",
    {200: schemas.FreeKeysOut},
    body=schemas.FreeKeysSettings,
    errors=(409,),
    description="The whole settings each time. A secret left out keeps the one stored for "
    "that checkpoint (or Turnstile); 409 when a checkpoint needs one and none is stored.",
)
async def put_settings(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_id_param(request.match_info["project_id"])
    body = await read_json(request, schemas.free_keys_settings)
    return json_response(await save_settings(request, vendor_id, project_id, body))


async def save_settings(
    request: web.Request, vendor_id: str, project_id: str, body: schemas.FreeKeysSettings
) -> schemas.FreeKeysOut:
    """Writes validated settings (the API's PUT and the dashboard's form): the secrets apart
    from the public JSON; 409 when a checkpoint needs a secret and none is stored."""
    args = []
    for c in body.checkpoints:
        provider = PROVIDERS[c.provider]
        candidate = secrets.token_hex(16) if provider.needs_postback else ""
        token = c.token if isinstance(c, schemas.FreeLinkvertise) else None
        args.append((token or "", provider.needs_secret, candidate))
    public = msgspec.structs.replace(
        body,
        checkpoints=[
            msgspec.structs.replace(c, token=None) if isinstance(c, schemas.FreeLinkvertise) else c
            for c in body.checkpoints
        ],
        turnstile=msgspec.structs.replace(body.turnstile, secret=None) if body.turnstile else None,
    )
    turnstile = "-" if body.turnstile is None else (body.turnstile.secret or "?")
    try:
        await store(request).freekeys.save(
            vendor_id,
            project_id,
            enabled=body.enabled,
            config=msgspec.json.encode(public).decode(),
            turnstile_secret=turnstile,
            checkpoint_secrets=args,
        )
    except FreeSecretMissing as exc:
        if exc.index < 0:
            raise ApiError(409, "turnstile.secret: required (none is stored)") from None
        raise ApiError(
            409, f"checkpoints[{exc.index}].token: required (the Linkvertise publisher token)"
        ) from None
    return await read_settings(request, vendor_id, project_id)


@route(
    "The get-key funnel of a project, per day",
    {200: list[schemas.FreeKeysDay]},
    query=(dataclasses.replace(PROJECT_QUERY, required=True), DAYS_QUERY),
    errors=(422,),
    description="Per UTC day, oldest first: page views, each checkpoint started and "
    "completed, keys issued and extended, refusals by reason (docs/free-keys.md).",
    tags=("analytics",),
)
async def funnel(request: web.Request, vendor_id: str) -> web.Response:
    project_id = project_query(request)
    if project_id is None:
        raise ApiError(422, "project_id: query parameter is required")
    days = parse_days(request.query.get("days", "7"))
    return json_response(await funnel_days(request, vendor_id, project_id, days))


def parse_days(raw: str) -> int:
    """The funnel's ``days`` (the API's query parameter, the dashboard's too)."""
    if not raw.isdigit() or not 1 <= int(raw) <= FUNNEL_DAYS:
        raise ApiError(422, f"days: must be an integer from 1 to {FUNNEL_DAYS}")
    return int(raw)


async def funnel_days(
    request: web.Request, vendor_id: str, project_id: str, days: int
) -> list[schemas.FreeKeysDay]:
    """The funnel of the last ``days`` UTC days, oldest first (every checkpoint of the
    settings, and any a day counted beyond them)."""
    s = store(request)
    config, _ = await s.freekeys.settings(vendor_id, project_id)
    settings = settings_of(config)
    rows = await s.freekeys.funnel(vendor_id, project_id, days)
    n = len(settings.checkpoints) if settings else 0
    for _, counts in rows:
        for field in counts:
            if field.startswith(("start:", "done:")):
                n = max(n, int(field.partition(":")[2]) + 1)
    return [
        schemas.FreeKeysDay(
            day=iso_day(day),
            page_views=c.get("views", 0),
            started=[c.get(f"start:{k}", 0) for k in range(n)],
            completed=[c.get(f"done:{k}", 0) for k in range(n)],
            keys_issued=c.get("issued", 0),
            keys_extended=c.get("extended", 0),
            refusals={f[8:]: v for f, v in sorted(c.items()) if f.startswith("refused:")},
        )
        for day, c in rows
    ]


@operation(
    "The machine's get-key page (free keys)",
    {200: schemas.GetKeyUrl},
    body=schemas.GetKeyRequest,
    errors=(400, 404, 422, 429),
    description="The URL of this machine's get-key page on a project with free keys on "
    "(the same `getkey_url` a KEY_REQUIRED verdict carries). The executor's fingerprint "
    "header, when present, is the HWID (the body's `hwid` only without one); 422 without "
    "either; 404 when the project has no free keys.",
    tags=("loader",),
)
async def getkey(request: web.Request) -> web.Response:
    body = await read_json(request, schemas.get_key_request)
    hwid = hwid_from_headers(request.headers)
    if hwid is None:
        hwid = body.hwid
    if not hwid:
        raise ApiError(422, "hwid: no HWID was provided")
    if not ids.PROJECT_ID.valid(body.project_id):
        raise ProjectNotFound
    s = store(request)
    state = await s.freekeys.state(body.project_id)
    if not state.enabled:
        raise ApiError(404, "Free keys are not enabled for this project")
    settings = request.app[SETTINGS]
    if settings.rate_execute > 0:
        # Limited like loader checks (per project and client IP): each call may write a
        # machine record, so an anonymous client must not be able to write them without end.
        rl = await s.freekeys.hit_getkey(
            body.project_id,
            rate_subject(client_ip(request)),
            settings.rate_execute,
            settings.rate_window,
        )
        if not rl.allowed:
            raise too_many(rl.limit, rl.reset, rl.retry_after)
    url, mid = getkey_url(request, body.project_id, hwid)
    await s.freekeys.remember(body.project_id, mid, hwid)
    return json_response(schemas.GetKeyUrl(url=url))
