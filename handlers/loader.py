"""The loader routes: the execution check (the hot path) and the published ``loader.lua``."""

from collections.abc import Mapping

import msgspec
from aiohttp import web

from handlers import schemas
from handlers.common import UUID_RE, ApiError, read_body, store
from handlers.luagen import loader_lua, macro_prelude
from service.appkeys import SETTINGS
from service.observability import METRICS
from store import ProjectNotFound
from store.models import Execution, iso

MESSAGES = {
    "KEY_VALID": "Key is valid",
    "KEY_INCORRECT": "Key is invalid",
    "KEY_EXPIRED": "Key has expired",
    "KEY_BANNED": "Key is banned",
    "KEY_HWID_LOCKED": "Key is locked to another HWID; ask for a HWID reset",
    "HWID_BANNED": "This HWID is banned",
    "PROJECT_NOT_FOUND": "Project not found",
    "PROJECT_INACTIVE": "Project is inactive",
    "HWID_MISSING": "No HWID was provided",
}

_encoder = msgspec.json.Encoder()
# Failure verdicts never change: encode each once.
_FAILURES = {
    code: _encoder.encode(schemas.Verdict(valid=False, code=code, message=message))
    for code, message in MESSAGES.items()
    if code != "KEY_VALID"
}

# Executors send the machine's fingerprint in a header of their own: any `<Executor>-Fingerprint`
# or `<Executor>-Hwid`, or one of these names.
_HWID_HEADER_NAMES = frozenset({"exploit-guid", "fingerprint", "hwid"})
_HWID_MAX = 512


def hwid_from_headers(headers: Mapping[str, str]) -> str | None:
    for name, value in headers.items():
        low = name.lower()
        if low.endswith(("-fingerprint", "-hwid")) or low in _HWID_HEADER_NAMES:
            value = value.strip()
            if value and len(value) <= _HWID_MAX:
                return value
    return None


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _valid(result: Execution, now: int) -> bytes:
    if result.expires_at is None:
        seconds_left: int | None = None
        left_macro: str | int = "Lifetime"
    else:
        seconds_left = max(0, result.expires_at - now)
        left_macro = seconds_left
    hosted = result.hosted
    assert hosted is not None
    prelude = ""
    if hosted.macros:
        values: dict[str, str | int] = {
            "L7_LinkedDiscordID": result.discord_id or "",
            "L7_ScriptName": hosted.script_name,
            "L7_ScriptVersion": hosted.version,
            "L7_TotalExecutions": result.total_executions,
            "L7_SecondsLeft": left_macro,
            "L7_UserNote": result.note or "",
        }
        prelude = macro_prelude(values, hosted.macros)
    verdict = schemas.ValidVerdict(
        valid=True,
        code="KEY_VALID",
        message=MESSAGES["KEY_VALID"],
        script=prelude + hosted.source,
        key=schemas.KeyInfo(
            expires_at=iso(result.expires_at),
            seconds_left=seconds_left,
            total_executions=result.total_executions,
            discord_id=result.discord_id,
            note=result.note,
        ),
    )
    return _encoder.encode(verdict)


async def execute(request: web.Request) -> web.Response:
    """POST /api/loader/execute: script_key + HWID in, verdict (and script) out."""
    body = await read_body(request, request.app[SETTINGS].max_body)
    try:
        req = schemas.execute_request.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ApiError(400, f"Malformed request: {exc}") from None
    verdicts = request.app[METRICS].verdicts
    hwid = req.hwid or hwid_from_headers(request.headers)
    if not hwid:
        verdicts["HWID_MISSING"].inc()
        return _json(_FAILURES["HWID_MISSING"])
    if not UUID_RE.fullmatch(req.project_id):
        verdicts["PROJECT_NOT_FOUND"].inc()
        return _json(_FAILURES["PROJECT_NOT_FOUND"])  # cannot name a project: no Redis call
    s = store(request)
    result = await s.execute(req.project_id, req.script_key, hwid)
    verdicts[result.code].inc()
    if result.code != "KEY_VALID":
        return _json(_FAILURES[result.code])
    return _json(_valid(result, s.now()))


async def loader(request: web.Request) -> web.Response:
    """GET /api/loader/{project_id}/loader.lua: the loader vendors publish."""
    project_id = request.match_info["project_id"]
    if not UUID_RE.fullmatch(project_id) or not await store(request).project_exists(project_id):
        raise ProjectNotFound
    base = request.app[SETTINGS].public_url or f"{request.scheme}://{request.host}"
    return web.Response(
        text=loader_lua(project_id, base),
        content_type="text/plain",
        headers={"Cache-Control": "no-store"},
    )
