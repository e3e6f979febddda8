"""Export and import: ``GET /api/vendor/export`` (a project as JSON lines, streamed) and
``POST /api/vendor/keys/import`` (keys of another system, keeping their ids). The rules that
turn an import entry into a key (``to_entries``) are shared with ``leaf7 vendor import-csv``.
"""

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from aiohttp import web

from handlers import ids, ratelimit, schemas
from handlers.appkeys import SETTINGS, store
from handlers.auth import vendor_operations
from handlers.body import json_response, read_json
from handlers.errors import ApiError
from handlers.observability import REQUEST_ID_HEADER, current_request_id, route_label
from handlers.openapi import Param
from handlers.params import project_id_param, required_query
from store.transfer import MAX_IMPORT, ExportLine, ImportEntry, ImportSummary

log = logging.getLogger(f"leaf7.{__name__}")

route = vendor_operations("transfer")

NDJSON = "application/x-ndjson"
# An import body may be larger than LEAF7_MAX_BODY: 1000 keys with long HWIDs and notes come
# near 2 MiB. (At most LEAF7_MAX_SOURCE, the largest body the app reads at all.)
IMPORT_MAX_BODY = 4 * 1024 * 1024
# The latest time an import takes (9999-12-31T23:59:59 UTC), in epoch seconds.
MAX_TIME = 253402300799

_encoder = msgspec.json.Encoder()


# ---- import rules -----------------------------------------------------------------------------


class InvalidEntry(ValueError):
    """An import entry that cannot be a key: ``field`` and why (a 422, or a CSV line)."""

    def __init__(self, field: str, message: str, index: int | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.index = index

    def __str__(self) -> str:
        where = "" if self.index is None else f"keys[{self.index}]."
        return f"{where}{self.field}: {self.message}"


# Fields only a redeemed key has (given one, an entry without ``redeemed`` is a redeemed key).
_ACTIVE_ONLY = (
    "discord_id",
    "hwid",
    "expires_at",
    "redeemed_at",
    "last_execution",
    "last_reset",
    "last_self_reset",
    "ban_reason",
    "ban_expires_at",
)


def _epoch(value: datetime | None, field: str) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # leaf7 writes UTC without an offset
    seconds = int(value.timestamp() // 1)
    if not 0 <= seconds <= MAX_TIME:
        raise InvalidEntry(field, "must be between 1970-01-01T00:00:00 and 9999-12-31T23:59:59")
    return seconds


def to_entry(k: schemas.ImportKey) -> ImportEntry:
    """The key an import entry describes; ``InvalidEntry`` for contradictions the schema
    cannot state."""
    only_redeemed = [f for f in _ACTIVE_ONLY if getattr(k, f) is not None]
    only_redeemed += [f for f in ("total_executions", "hwid_resets") if getattr(k, f)]
    if k.banned:
        only_redeemed.append("banned")
    redeemed = bool(only_redeemed) if k.redeemed is None else k.redeemed
    if not redeemed and only_redeemed:
        raise InvalidEntry(only_redeemed[0], "only a redeemed key has it (redeemed is false)")
    durations = (k.key_days or 0, k.key_hours or 0, k.key_minutes or 0)
    if k.expires_at is not None and any(durations):
        raise InvalidEntry(
            "expires_at", "give expires_at or key_days/key_hours/key_minutes, not both"
        )
    for field in ("ban_reason", "ban_expires_at"):
        if getattr(k, field) is not None and not k.banned:
            raise InvalidEntry(field, "only a banned key has it (banned is false)")
    return ImportEntry(
        key_id=k.key_id,
        redeemed=redeemed,
        created_at=_epoch(k.created_at, "created_at"),
        key_days=durations[0],
        key_hours=durations[1],
        key_minutes=durations[2],
        note=k.note,
        discord_id=k.discord_id,
        hwid=k.hwid,
        redeemed_at=_epoch(k.redeemed_at, "redeemed_at"),
        expires_at=_epoch(k.expires_at, "expires_at"),
        total_executions=k.total_executions,
        hwid_resets=k.hwid_resets,
        last_execution=_epoch(k.last_execution, "last_execution"),
        last_reset=_epoch(k.last_reset, "last_reset"),
        last_self_reset=_epoch(k.last_self_reset, "last_self_reset"),
        banned=k.banned,
        ban_reason=k.ban_reason,
        ban_until=_epoch(k.ban_expires_at, "ban_expires_at"),
    )


def to_entries(keys: Sequence[schemas.ImportKey]) -> list[ImportEntry]:
    """Every entry of one import; ``InvalidEntry`` (with its index) for the first bad one,
    a ``key_id`` given twice included."""
    if len(keys) > MAX_IMPORT:
        raise InvalidEntry("keys", f"at most {MAX_IMPORT} keys per import")
    seen: dict[str, int] = {}
    out = []
    for i, k in enumerate(keys):
        if k.key_id in seen:
            raise InvalidEntry("key_id", f"the same key as keys[{seen[k.key_id]}]", i)
        seen[k.key_id] = i
        try:
            out.append(to_entry(k))
        except InvalidEntry as exc:
            exc.index = i
            raise
    return out


# ---- routes -----------------------------------------------------------------------------------

PROJECT = Param(
    "project_id",
    ids.PROJECT_ID.json_schema(),
    "The project to export (a UUID; any other value: 404)",
    required=True,
)


@route(
    "Export a project as JSON lines: settings, source, keys, blacklist",
    {200: ExportLine},
    media_type=NDJSON,
    query=(PROJECT,),
    errors=(404, 422),
    description="Streamed as it is read (chunked), one JSON object per line, each with a "
    "`type`: one `project` line, one `source` line, a `buyer_key` line per unredeemed key and "
    "an `active_key` line per redeemed key (in index order), a `blacklist` line per entry of "
    "the vendor's blacklist, and a last `end` line with the counts (a body without it is "
    "incomplete: an error after the first line cuts the connection). The schema is that of "
    "one line. The key lines are import entries: POST /api/vendor/keys/import restores them.",
)
async def export(request: web.Request, vendor_id: str) -> web.StreamResponse:
    """GET /api/vendor/export?project_id=..."""
    project_id = project_id_param(required_query(request, "project_id"))
    batches = store(request).transfer.export(vendor_id, project_id)
    try:
        # The first batch is read before anything is sent, so that its errors (404, 503)
        # are ordinary answers.
        first = await anext(batches)
        response = web.StreamResponse(headers={"Content-Type": NDJSON})
        ratelimit.add_rate_headers(request, response)  # (what the middlewares add after the
        response.headers[REQUEST_ID_HEADER] = current_request_id.get()  # handler: too late)
        await response.prepare(request)
        try:
            await response.write(_encoder.encode_lines(first))
            async for batch in batches:
                await response.write(_encoder.encode_lines(batch))
        except Exception as exc:  # the status is sent: all that is left is to cut it short
            log.warning(
                "export cut short (%s) for %s %s (request %s)",
                type(exc).__name__,
                request.method,
                route_label(request),
                current_request_id.get(),
            )
            if request.transport is not None:
                request.transport.abort()  # never the chunked terminator: it is incomplete
            return response
    finally:
        await batches.aclose()
    await response.write_eof()
    return response


@route(
    "Import keys from another system, keeping their ids",
    {200: ImportSummary},
    body=schemas.KeyImport,
    errors=(404,),
    description="At most 1000 keys per call, written in one atomic step; a key already in "
    "the project is left unchanged (importing again changes nothing), a key_id that exists "
    "in another of the vendor's projects is refused for that entry (other vendors' ids are "
    "not looked at: each vendor's key ids are its own). 422 for an entry that cannot be a key "
    "(detail: keys[i].field). Counted like key generation (LEAF7_RATE_KEYGEN). Bodies up "
    "to 4 MiB (or LEAF7_MAX_BODY, if larger).",
    tags=("keys", "transfer"),
)
async def import_keys(request: web.Request, vendor_id: str) -> web.Response:
    """POST /api/vendor/keys/import"""
    settings = request.app[SETTINGS]
    limit = max(settings.max_body, min(IMPORT_MAX_BODY, settings.max_source))
    body = await read_json(request, schemas.key_import, limit=limit)
    project_id = project_id_param(body.project_id)
    try:
        entries = to_entries(body.keys)
    except InvalidEntry as exc:
        raise ApiError(422, str(exc)) from None
    if settings.rate_keygen > 0:
        rl = await store(request).vendors.hit_keygen(
            vendor_id, settings.rate_keygen, settings.rate_window
        )
        ratelimit.check(request, rl)
    summary = await store(request).transfer.import_keys(vendor_id, project_id, entries)
    return json_response(summary)
