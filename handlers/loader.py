"""The loader routes: the execution check (the hot path) and the published ``loader.lua``."""

import functools
from collections.abc import Mapping

import msgspec
from aiohttp import web

from handlers import executors, ids, leaks, ratelimit, schemas, signing
from handlers.appkeys import METRICS, SETTINGS, SIGNER, STORE, store
from handlers.body import check_depth, read_body
from handlers.clientip import base_url, client_ip, rate_subjects
from handlers.errors import ApiError
from handlers.freekeys.links import key_required
from handlers.luagen import loader_lua, lua_string, signed_loader_lua
from handlers.openapi import operation
from handlers.ratelimit import too_many
from handlers.wire import WireResponse
from store import ProjectNotFound, watermark
from store.models import Execution, Hosted, Limit, Signing, iso

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
_PER_RUN = frozenset(
    {"L7_LinkedDiscordID", "L7_TotalExecutions", "L7_SecondsLeft", "L7_UserNote", "L7_IsPremium"}
)


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
    if _splicers(hosted) is None:
        parts.append(_encoder.encode(hosted.source)[1:-1].replace(b"%", b"%%"))
    else:  # each key's copy of the source (watermarked)
        parts.append(b"%b")
        slots.append(_SOURCE)
    parts.append(_KEY)
    return b"".join(parts), tuple(slots)


# Watermarks (store/watermark.py, docs/loader-security.md#leaks): the slot of the source in a
# marked revision's template; the copy is spliced from the revision's pieces by the key's bits.
_SOURCE = "<source>"


def _json_piece(text: str) -> bytes:
    return _encoder.encode(text)[1:-1]


@functools.lru_cache(maxsize=64)
def _splicers(hosted: Hosted) -> watermark.Splicer | None:
    """The revision's pieces, JSON-escaped (None: its copies are not marked)."""
    plan = watermark.load_plan(hosted.marks)
    return None if plan is None else watermark.Splicer(hosted.source, plan, _json_piece)


@functools.lru_cache(maxsize=16)
def _raw_splicer(hosted: Hosted) -> watermark.Splicer:
    """The revision's pieces as Lua text (the signed chunk's hash)."""
    plan = watermark.load_plan(hosted.marks)
    assert plan is not None
    return watermark.Splicer(hosted.source, plan)


@functools.lru_cache(maxsize=16384)
def _mark_bits(secret: bytes, project_id: str, key_id: str) -> tuple[int, ...]:
    return watermark.tag_bits(watermark.tag(leaks.marks_keys(secret), project_id, key_id))


def _json_str(value: str | None) -> bytes:
    return b"null" if value is None else _encoder.encode(value)


def _valid(result: Execution, now: int, bits: tuple[int, ...] | None = None) -> bytes:
    """The body of a valid verdict: what encoding a schemas.ValidVerdict gives, whose script is
    ``macro_prelude(...) + source`` (the tests hold both to it); the source is the copy marked
    with ``bits`` when the revision is watermarked."""
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
        elif name == "L7_IsPremium":  # false for a free key (docs/free-keys.md)
            values.append(b"true" if result.premium else b"false")
        elif name == _SOURCE:
            splicer = _splicers(hosted)
            assert splicer is not None and bits is not None
            values.append(splicer.splice(bits))
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


# Signed verdicts (handlers/signing.py): the chunk's hash is taken from the digest of the
# prelude (per run: a few hundred bytes) and of the source (once per revision).
@functools.lru_cache(maxsize=256)
def _prelude_template(hosted: Hosted) -> tuple[bytes, tuple[str, ...]]:
    """The macro prelude of ``hosted`` as Lua text (what the answer's script starts with),
    with a %b slot for each per-run macro, in the order of ``_valid_template``'s."""
    parts, slots = [], []
    for name in hosted.macros:
        if name in _PER_RUN:
            literal = b"%b"
            slots.append(name)
        elif name == "L7_ScriptName":
            literal = lua_string(hosted.script_name).encode().replace(b"%", b"%%")
        else:  # L7_ScriptVersion
            literal = lua_string(hosted.version).encode().replace(b"%", b"%%")
        parts.append(b"local " + name.encode() + b" = " + literal + b"\n")
    return b"".join(parts), tuple(slots)


@functools.lru_cache(maxsize=256)
def _source_hash(hosted: Hosted) -> bytes:
    return signing.digest(hosted.source.encode("utf-8", "surrogatepass"))


@functools.lru_cache(maxsize=4096)
def _lua_raw(value: str) -> bytes:
    return lua_string(value).encode()


def _prelude(result: Execution, now: int) -> bytes:
    hosted = result.hosted
    assert hosted is not None
    template, slots = _prelude_template(hosted)
    expires_at = result.expires_at
    values = []
    for name in slots:
        if name == "L7_LinkedDiscordID":
            values.append(_lua_raw(result.discord_id or ""))
        elif name == "L7_TotalExecutions":
            values.append(b"%d" % result.total_executions)
        elif name == "L7_SecondsLeft":
            values.append(
                _lua_raw("Lifetime") if expires_at is None else b"%d" % max(0, expires_at - now)
            )
        elif name == "L7_IsPremium":
            values.append(b"true" if result.premium else b"false")
        else:  # L7_UserNote
            values.append(_lua_raw(result.note or ""))
    return template % tuple(values)


@functools.lru_cache(maxsize=256)
def _signed_template(hosted: Hosted) -> bytes:
    """The signed valid verdict of ``hosted``: ``_valid_template``'s bytes with %b slots for
    the whole prelude (JSON-escaped), the source (a watermarked revision only), the key's
    fields, then the signature's members; every literal % of the fixed parts doubled."""
    parts = [_VALID_HEAD.replace(b"%", b"%%"), b"%b"]
    if _splicers(hosted) is None:
        parts.append(_encoder.encode(hosted.source)[1:-1].replace(b"%", b"%%"))
    else:
        parts.append(b"%b")
    parts.append(_KEY[:-1] + _SIGNATURE)
    return b"".join(parts)


def _json_lua(lua: bytes) -> bytes:
    """Lua text this module wrote (the prelude: printable ASCII and LF only, ``lua_string``
    escapes every other byte) as the inside of a JSON string, the bytes msgspec writes."""
    return lua.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")


# A key's and a HWID's hash come back on every run of the key.
_text_hash = functools.lru_cache(maxsize=8192)(signing.text_hash)


async def _signed(
    signer: signing.Signer,
    project_id: str,
    result: Execution,
    req: schemas.ExecuteRequest,
    hwid: str,
    now: int,
    bits: tuple[int, ...] | None = None,
) -> bytes:
    """The body of a valid verdict with its ``signature`` (docs/loader-security.md): what
    ``_valid`` gives, one member more. Signed with the key id the loader asked for when it is
    the previous one, still in grace (a pinned loader from before a rotation), else the
    current one. The prelude is built once, as Lua (its hash) and JSON-escaped from that."""
    assert req.nonce is not None and result.sign_kid is not None
    kid = result.prev_kid if req.kid is not None and req.kid == result.prev_kid else None
    kid = kid or result.sign_kid
    prelude = _prelude(result, now)
    hosted = result.hosted
    assert hosted is not None
    values: list[bytes | int] = [_json_lua(prelude)]
    if bits is not None:  # the key's watermarked copy is what runs
        source_hash = signing.digest(_raw_splicer(hosted).splice(bits))
        splicer = _splicers(hosted)
        assert splicer is not None
        values.append(splicer.splice(bits))
    else:
        source_hash = _source_hash(hosted)
    chunk = signing.chunk_hash(signing.digest(prelude), source_hash).hex().encode()
    expires = now + signing.LIFETIME
    hwid_hash = _text_hash(hwid)
    nonce = req.nonce
    leaf = signing.leaf(
        kid, project_id, nonce, now, expires, _text_hash(req.script_key), hwid_hash,
        len(prelude), chunk,
    )  # fmt: skip
    batch, index = signer.sign(project_id, kid, leaf)
    expires_at = result.expires_at
    values += (
        _json_str(iso(expires_at)),
        b"null" if expires_at is None else b"%d" % max(0, expires_at - now),
        result.total_executions,
        _json_str(result.discord_id),
        _json_str(result.note),
        kid.encode(), nonce.encode(), now, expires, hwid_hash, len(prelude), chunk,
    )  # fmt: skip
    sig, paths = await batch
    values += (paths[index], sig)
    return _signed_template(hosted) % tuple(values)


_SIGNATURE = (
    b',"signature":{"v":1,"kid":"%b","nonce":"%b","iat":%d,"exp":%d,"hwid":"%b",'
    b'"split":%d,"chunk":"%b","path":%b,"sig":"%b"}}'
)


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
    verdicts = app[METRICS].verdicts
    # The executor's header outranks the body: the body is the script's to write (a shared key
    # sent with the HWID it is bound to would pass the lock), the header the executor's.
    hwid = hwid_from_headers(request.headers)
    if hwid is None:
        hwid = req.hwid
    if not hwid:
        verdicts["HWID_MISSING"].inc()
        return _json(_FAILURES["HWID_MISSING"])
    if not ids.PROJECT_ID.valid(req.project_id):
        verdicts["PROJECT_NOT_FOUND"].inc()
        return _json(_FAILURES["PROJECT_NOT_FOUND"])  # cannot name a project: no Redis call
    s = app[STORE]
    ip = client_ip(request)
    subject, wide = rate_subjects(ip)
    result = await s.checks.execute(
        req.project_id, req.script_key, hwid, subject, ip, wide, executors.normalise(req.executor)
    )
    if result.code == "RATE_LIMITED":
        if result.limited is Limit.FAILURES:
            raise too_many(settings.brute_force_limit, result.reset or 0, result.retry_after)
        if result.limited is Limit.FAILURES_48:
            raise too_many(settings.brute_force_limit_wide, result.reset or 0, result.retry_after)
        raise too_many(settings.rate_execute, result.reset or 0, result.retry_after)
    verdicts[result.code].inc()
    if result.code == "KEY_REQUIRED":  # free keys: the machine's get-key page (unsigned)
        body = key_required(request, req.project_id, hwid)
    elif result.code != "KEY_VALID":
        body = _FAILURES[result.code]  # never signed
    else:
        now = s.now()
        hosted = result.hosted
        bits = None
        if hosted is not None and hosted.marks and _splicers(hosted) is not None:
            bits = _mark_bits(s.vendors.secret, req.project_id, req.script_key)
        if result.sign_kid is not None and req.nonce is not None:
            body = await _signed(app[SIGNER], req.project_id, result, req, hwid, now, bits)
        else:
            body = _valid(result, now, bits)
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
