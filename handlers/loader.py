"""The loader routes: the execution check (the hot path) and the published ``loader.lua``."""

import functools
from collections.abc import Mapping

import msgspec
from aiohttp import web

from handlers import ids, ratelimit, schemas
from handlers.appkeys import METRICS, SETTINGS, STORE
from handlers.common import check_depth, client_ip, rate_subjects, read_body, store
from handlers.errors import ApiError
from handlers.luagen import loader_lua, lua_string
from handlers.openapi import operation
from handlers.ratelimit import too_many
from handlers.wire import WireResponse
from store import ProjectNotFound
from store.models import Execution, Hosted, iso

_encoder = msgspec.json.Encoder()
# Failure verdicts never change: encode each once.
_FAILURES = {
    code: _encoder.encode(schemas.Verdict(valid=False, code=code, message=message))
    for code, message in schemas.VERDICTS.items()
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


_JSON_HEAD = b"Content-Type: application/json\r\n"


def _json(body: bytes) -> WireResponse:
    return WireResponse(_JSON_HEAD, body)


# limit -> the head of every limited verdict, with slots for what remains and the reset time
# (see handlers/ratelimit.py; the limit is a setting).
_HEAD_TEMPLATES: dict[int, bytes] = {}


def _answer(body: bytes, limit: int, remaining: int, reset: int) -> WireResponse:
    """A verdict with the X-RateLimit-* headers, formatted from integers."""
    template = _HEAD_TEMPLATES.get(limit)
    if template is None:
        template = _HEAD_TEMPLATES[limit] = (
            _JSON_HEAD
            + f"{ratelimit.LIMIT}: {limit}\r\n{ratelimit.REMAINING}: %d\r\n"
            f"{ratelimit.RESET}: %d\r\n".encode()
        )
    return WireResponse(template % (max(0, remaining), reset), body)


# A valid verdict is one bytes template per hosted revision (the fixed head, the macro
# prelude, the source JSON-escaped once, the key's fields) filled with the run's values by one
# %-format: the same bytes as encoding a schemas.ValidVerdict, which the tests check.
_VALID_HEAD = (
    _encoder.encode(
        schemas.Verdict(valid=True, code="KEY_VALID", message=schemas.VERDICTS["KEY_VALID"])
    )[:-1]
    + b',"script":"'
)


@functools.lru_cache(maxsize=4096)  # a key's Discord ID and note come back on every run
def _lua_json(value: str) -> bytes:
    """``lua_string(value)`` as the inside of a JSON string (its quotes escaped)."""
    if value.isalnum() and value.isascii():  # Discord IDs, names: nothing to escape
        return b'\\"' + value.encode() + b'\\"'
    return _encoder.encode(lua_string(value))[1:-1]


_LIFETIME = _lua_json("Lifetime")
# The key's fields after the script (schemas.KeyInfo, in its field order).
_KEY = (
    b'","key":{"expires_at":%b,"seconds_left":%b,"total_executions":%d,"discord_id":%b,"note":%b}}'
)
# Macros whose value changes from run to run (the others are fixed per revision).
_PER_RUN = frozenset({"L7_LinkedDiscordID", "L7_TotalExecutions", "L7_SecondsLeft", "L7_UserNote"})


@functools.lru_cache(maxsize=256)
def _valid_template(hosted: Hosted) -> tuple[bytes, tuple[str, ...]]:
    """The valid verdict of ``hosted`` with a %b slot for each per-run macro (named in order)
    and the key's fields; every literal % of the fixed parts doubled."""
    parts = [_VALID_HEAD.replace(b"%", b"%%")]
    slots = []
    for name in hosted.macros:  # one "local <macro> = <literal>" line each
        if name in _PER_RUN:
            literal = b"%b"
            slots.append(name)
        elif name == "L7_ScriptName":
            literal = _lua_json(hosted.script_name).replace(b"%", b"%%")
        else:  # L7_ScriptVersion
            literal = _lua_json(hosted.version).replace(b"%", b"%%")
        parts.append(b"local " + name.encode() + b" = " + literal + b"\\n")
    parts.append(_encoder.encode(hosted.source)[1:-1].replace(b"%", b"%%"))
    parts.append(_KEY)
    return b"".join(parts), tuple(slots)


def _json_str(value: str | None) -> bytes:
    return b"null" if value is None else _encoder.encode(value)


def _valid(result: Execution, now: int) -> bytes:
    """The body of a valid verdict: what encoding a schemas.ValidVerdict gives, whose script is
    ``macro_prelude(...) + source`` (the tests hold both to it)."""
    hosted = result.hosted
    assert hosted is not None
    template, slots = _valid_template(hosted)
    expires_at = result.expires_at
    if expires_at is None:
        seconds_left = b"null"
        left = _LIFETIME
    else:
        left = seconds_left = b"%d" % max(0, expires_at - now)
    values: list[bytes | int] = []
    for name in slots:
        if name == "L7_LinkedDiscordID":
            values.append(_lua_json(result.discord_id or ""))
        elif name == "L7_TotalExecutions":
            values.append(b"%d" % result.total_executions)
        elif name == "L7_SecondsLeft":
            values.append(left)
        else:  # L7_UserNote
            values.append(_lua_json(result.note or ""))
    values += (
        _json_str(iso(expires_at)),
        seconds_left,
        result.total_executions,
        _json_str(result.discord_id),
        _json_str(result.note),
    )
    return template % tuple(values)


@operation(
    "The loader's execution check",
    {200: schemas.ExecuteVerdict},
    body=schemas.ExecuteRequest,
    invalid_body=(400,),
    limited=True,
    description="Always 200 with a verdict, unless the request is malformed (400) or the "
    "client is rate limited (429: LEAF7_RATE_EXECUTE checks per window per project and IP, "
    "or blocked after LEAF7_BRUTE_FORCE_LIMIT KEY_INCORRECT verdicts, or an IPv6 client's /48 "
    "after LEAF7_BRUTE_FORCE_LIMIT_48). Without `hwid` the "
    "executor's fingerprint header is used.",
    tags=("loader",),
)
async def execute(request: web.Request) -> WireResponse:
    """POST /api/loader/execute: script_key + HWID in, verdict (and script) out."""
    app = request.app  # a property: looked up once
    settings = app[SETTINGS]
    body = await read_body(request, settings.max_body)
    check_depth(body)
    try:
        req = schemas.execute_request.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ApiError(400, f"Malformed request: {exc}") from None
    verdicts = app[METRICS].verdicts
    hwid = req.hwid or hwid_from_headers(request.headers)
    if not hwid:
        verdicts["HWID_MISSING"].inc()
        return _json(_FAILURES["HWID_MISSING"])
    if not ids.PROJECT_ID.valid(req.project_id):
        verdicts["PROJECT_NOT_FOUND"].inc()
        return _json(_FAILURES["PROJECT_NOT_FOUND"])  # cannot name a project: no Redis call
    s = app[STORE]
    ip = client_ip(request)
    subject, wide = rate_subjects(ip)
    result = await s.checks.execute(req.project_id, req.script_key, hwid, subject, ip, wide)
    if result.code == "RATE_LIMITED":
        if result.limited == "f":
            raise too_many(settings.brute_force_limit, result.reset or 0, result.retry_after)
        if result.limited == "w":
            raise too_many(settings.brute_force_limit_wide, result.reset or 0, result.retry_after)
        raise too_many(settings.rate_execute, result.reset or 0, result.retry_after)
    verdicts[result.code].inc()
    body = _FAILURES[result.code] if result.code != "KEY_VALID" else _valid(result, s.now())
    if result.remaining is None:
        return _json(body)
    return _answer(body, settings.rate_execute, result.remaining, result.reset or 0)


@operation(
    "The Lua loader vendors publish",
    {200: str},
    media_type="text/plain",
    tags=("loader",),
)
async def loader(request: web.Request) -> web.Response:
    """GET /api/loader/{project_id}/loader.lua: the loader vendors publish."""
    project_id = request.match_info["project_id"]
    if not ids.PROJECT_ID.valid(project_id) or not await store(request).projects.exists(project_id):
        raise ProjectNotFound
    base = request.app[SETTINGS].public_url or f"{request.scheme}://{request.host}"
    return web.Response(
        text=loader_lua(project_id, base),
        content_type="text/plain",
        headers={"Cache-Control": "no-store"},
    )
