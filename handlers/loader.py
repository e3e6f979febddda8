"""The loader routes: the execution check (the hot path) and the published ``loader.lua``."""

from collections.abc import Mapping

import msgspec
from aiohttp import web

from handlers import executors, ids, ratelimit, schemas, verdicts
from handlers.appkeys import METRICS, SETTINGS, SIGNER, STORE, store
from handlers.body import check_depth, read_body
from handlers.clientip import base_url, client_ip, rate_subjects
from handlers.errors import ApiError
from handlers.freekeys.links import key_required
from handlers.luagen import loader_lua, signed_loader_lua
from handlers.openapi import operation
from handlers.ratelimit import too_many
from handlers.wire import WireResponse
from store import ProjectNotFound
from store.models import Limit, Signing

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
_HWID_SUFFIXES = ("-fingerprint", "-hwid")
_HWID_MAX = 512


def hwid_from_headers(headers: Mapping[str, str]) -> str | None:
    """The executor's fingerprint: None without a fingerprint header, ``""`` (no HWID) when
    two of them disagree. The executor adds its header to every request a script makes, and
    a script may add headers of its own: one that names the HWID a key is bound to must not
    replace the executor's."""
    found = None
    for name, value in headers.items():
        low = name.lower()
        if low.endswith(_HWID_SUFFIXES) or low in _HWID_HEADER_NAMES:
            value = value.strip()
            if not value or len(value) > _HWID_MAX:
                continue
            if found is None:
                found = value
            elif value != found:
                return ""
    return found


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


@operation(
    "The loader's execution check",
    {200: schemas.ExecuteVerdict},
    body=schemas.ExecuteRequest,
    invalid_body=(400,),
    limited=True,
    description="Always 200 with a verdict, unless the request is malformed (400) or the "
    "client is rate limited (429: LEAF7_RATE_EXECUTE checks per window per project and IP, "
    "or blocked after LEAF7_BRUTE_FORCE_LIMIT KEY_INCORRECT verdicts, or an IPv6 client's /48 "
    "after LEAF7_BRUTE_FORCE_LIMIT_48). The executor's fingerprint header, when present, is "
    "the HWID (the body's `hwid` is used only without one).",
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
    counts = app[METRICS].verdicts
    # The executor's header outranks the body: the body is the script's to write (a shared key
    # sent with the HWID it is bound to would pass the lock), the header the executor's.
    hwid = hwid_from_headers(request.headers)
    if hwid is None:
        hwid = req.hwid
    if not hwid:
        counts["HWID_MISSING"].inc()
        return _json(_FAILURES["HWID_MISSING"])
    if not ids.PROJECT_ID.valid(req.project_id):
        counts["PROJECT_NOT_FOUND"].inc()
        return _json(_FAILURES["PROJECT_NOT_FOUND"])  # cannot name a project: no Redis call
    s = app[STORE]
    ip = client_ip(request)
    subject, wide = rate_subjects(ip)
    # A nonce asks for a signed verdict: made with the check's batch (on a signing project).
    job = verdicts.SignJob(req, hwid) if req.nonce is not None else None
    result = await s.checks.execute(
        req.project_id, req.script_key, hwid, subject, ip, wide, executors.normalise(req.executor),
        job,
    )  # fmt: skip
    if result.code == "RATE_LIMITED":
        if result.limited is Limit.FAILURES:
            raise too_many(settings.brute_force_limit, result.reset or 0, result.retry_after)
        if result.limited is Limit.FAILURES_48:
            raise too_many(settings.brute_force_limit_wide, result.reset or 0, result.retry_after)
        raise too_many(settings.rate_execute, result.reset or 0, result.retry_after)
    counts[result.code].inc()
    if result.code == "KEY_REQUIRED":  # free keys: the machine's get-key page (unsigned)
        body = key_required(request, req.project_id, hwid)
    elif result.code != "KEY_VALID":
        body = _FAILURES[result.code]  # never signed
    elif job is not None and job.body is not None:
        body = job.body  # signed as the check's batch was decoded (handlers/verdicts.py)
    elif job is not None and result.sign_kid is not None:
        raise RuntimeError("a signed verdict was asked for and not made")
    else:
        bits = verdicts.key_bits(result.hosted, s.vendors.secret, req.project_id, req.script_key)
        body = verdicts.valid(result, s.now(), bits)
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
    if not ids.PROJECT_ID.valid(project_id):
        raise ProjectNotFound
    signing_state = await store(request).projects.signing(project_id)
    if signing_state is None:
        raise ProjectNotFound
    return loader_response(request, project_id, signing_state)


def loader_text(request: web.Request, project_id: str, state: Signing) -> str:
    """The project's loader: with the verifier and its public keys (current, then previous
    while in grace) when it signs its verdicts, else the plain one."""
    base = base_url(request)
    if not state.enabled or state.current is None:
        return loader_lua(project_id, base)
    signer = request.app[SIGNER]
    keys = [state.current] + ([state.previous] if state.previous else [])
    return signed_loader_lua(
        project_id, base, [(k.kid, signer.public_key(project_id, k.kid)) for k in keys]
    )


def loader_response(
    request: web.Request, project_id: str, state: Signing, **headers: str
) -> web.Response:
    return web.Response(
        text=loader_text(request, project_id, state),
        content_type="text/plain",
        headers={"Cache-Control": "no-store", **headers},
    )
