"""The bodies of valid verdicts: the plain one, and the signed one (docs/loader-security.md).

A valid verdict is one bytes template per hosted revision filled by one %-format. A signed one
is built where the check's reply is decoded (store/checks.py's ValidHook): the valid answers
of a project that asked for a signature and came in one read from Redis (under load, two)
share one Ed25519 signature over the Merkle root of their leaves (handlers/signing.py), so
the handler waits for nothing more than the check itself.
"""

import functools
from collections.abc import Callable
from typing import Any

import msgspec

from handlers import leaks, schemas, signing
from handlers.luagen import lua_string
from store import watermark
from store.models import Execution, Hosted, iso

_encoder = msgspec.json.Encoder()

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
def _valid_template(hosted: Hosted) -> tuple[bytes, tuple[str, ...], bool]:
    """The valid verdict of ``hosted`` with a %b slot for each per-run macro (named in order),
    then one for the source when it is watermarked (the third member: True; each key's copy is
    spliced from the revision's pieces by the key's bits, store/watermark.py), and the key's
    fields; every literal % of the fixed parts doubled."""
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
    marked = splicers(hosted) is not None
    if marked:
        parts.append(b"%b")
    else:
        parts.append(_encoder.encode(hosted.source)[1:-1].replace(b"%", b"%%"))
    parts.append(_KEY)
    return b"".join(parts), tuple(slots), marked


def _json_piece(text: str) -> bytes:
    return _encoder.encode(text)[1:-1]


@functools.lru_cache(maxsize=64)
def splicers(hosted: Hosted) -> watermark.Splicer | None:
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


def key_bits(
    hosted: Hosted | None, secret: bytes, project_id: str, key_id: str
) -> tuple[int, ...] | None:
    """The bits of the key's watermarked copy (``secret``: the server secret); None when the
    revision marks no copies."""
    if hosted is None or not hosted.marks or splicers(hosted) is None:
        return None
    return _mark_bits(secret, project_id, key_id)


def _json_str(value: str | None) -> bytes:
    return b"null" if value is None else _encoder.encode(value)


def valid(result: Execution, now: int, bits: tuple[int, ...] | None = None) -> bytes:
    """The body of a valid verdict: what encoding a schemas.ValidVerdict gives, whose script is
    ``macro_prelude(...) + source`` (the tests hold both to it); the source is the copy marked
    with ``bits`` when the revision is watermarked."""
    hosted = result.hosted
    assert hosted is not None
    template, slots, marked = _valid_template(hosted)
    expires_at = result.expires_at
    seconds_left = b"null" if expires_at is None else b"%d" % max(0, expires_at - now)
    values = _macro_values(slots, result, now, _lua_json, _LIFETIME)
    if marked:  # the key's copy of the source
        splicer = splicers(hosted)
        assert splicer is not None and bits is not None
        values.append(splicer.splice(bits))
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
def _signed_revision(hosted: Hosted) -> tuple[bytes, tuple[str, ...], bytes, bytes]:
    """What a revision's signed answers share (one cache lookup per answer): the macro prelude
    as Lua text (what the answer's script starts with) with a %b slot for each per-run macro,
    in the order of ``_valid_template``'s, and those macros' names; the source's digest; the
    answer's head up to its signature's path, with %b slots for the whole prelude
    (JSON-escaped), the source (a watermarked revision only), the key's fields, then the
    signature's members; every literal % of the fixed parts doubled."""
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
    head = [_VALID_HEAD.replace(b"%", b"%%"), b"%b"]
    if splicers(hosted) is None:
        head.append(_encoder.encode(hosted.source)[1:-1].replace(b"%", b"%%"))
    else:
        head.append(b"%b")
    head.append(_KEY[:-1] + _SIGNATURE_HEAD)
    source_hash = signing.digest(hosted.source.encode("utf-8", "surrogatepass"))
    return b"".join(parts), tuple(slots), source_hash, b"".join(head)


@functools.lru_cache(maxsize=4096)
def _lua_raw(value: str) -> bytes:
    return lua_string(value).encode()


_LUA_LIFETIME = _lua_raw("Lifetime")


def _macro_values(
    slots: tuple[str, ...],
    result: Execution,
    now: int,
    quote: Callable[[str], bytes],
    lifetime: bytes,
) -> list[bytes | int]:
    """The per-run macros' values in the order of ``slots``: strings through ``quote`` (a Lua
    literal, JSON-escaped or not), ``lifetime`` for a key that never expires."""
    expires_at = result.expires_at
    values: list[bytes | int] = []
    for name in slots:
        if name == "L7_LinkedDiscordID":
            values.append(quote(result.discord_id or ""))
        elif name == "L7_TotalExecutions":
            values.append(b"%d" % result.total_executions)
        elif name == "L7_SecondsLeft":
            values.append(lifetime if expires_at is None else b"%d" % max(0, expires_at - now))
        elif name == "L7_IsPremium":  # false for a free key (docs/free-keys.md)
            values.append(b"true" if result.premium else b"false")
        else:  # L7_UserNote
            values.append(quote(result.note or ""))
    return values


def _prelude(template: bytes, slots: tuple[str, ...], result: Execution, now: int) -> bytes:
    """The macro prelude of a run as Lua text (``_signed_revision``'s template and slots)."""
    return template % tuple(_macro_values(slots, result, now, _lua_raw, _LUA_LIFETIME))


def _json_lua(lua: bytes) -> bytes:
    """Lua text this module wrote (the prelude: printable ASCII and LF only, ``lua_string``
    escapes every other byte) as the inside of a JSON string, the bytes msgspec writes."""
    return lua.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")


# A key's and a HWID's hash come back on every run of the key.
_text_hash = functools.lru_cache(maxsize=8192)(signing.text_hash)

# A signed answer ends with its signature's members: all but the path and the signature are
# formatted with the answer (_SIGNATURE_HEAD), those two are appended once the batch is signed.
_SIGNATURE_HEAD = (
    b',"signature":{"v":1,"kid":"%b","nonce":"%b","iat":%d,"exp":%d,"hwid":"%b",'
    b'"split":%d,"chunk":"%b","path":'
)
_SIG = b',"sig":"'
_END = b'"}}'


class SignJob:
    """A check that asks for a signed verdict (its request carries a nonce): what the handler
    queues with it as the check's tag. When its verdict is valid and its project signs, the
    hook leaves the signed body in ``body``."""

    __slots__ = ("body", "hwid", "req")

    def __init__(self, req: schemas.ExecuteRequest, hwid: str) -> None:
        self.req = req
        self.hwid = hwid
        self.body: bytes | None = None


# One signed answer before its signature: (the key id, the leaf, the answer up to its path).
_Unsigned = tuple[str, bytes, bytes]


def _unsigned(
    project_id: str,
    result: Execution,
    req: schemas.ExecuteRequest,
    hwid: str,
    now: int,
    bits: tuple[int, ...] | None,
) -> _Unsigned:
    """A valid verdict's signed body up to its path: what ``valid`` gives, one member more.
    Signed with the key id the loader asked for when it is the previous one, still in grace (a
    pinned loader from before a rotation), else the current one. The prelude is built once,
    as Lua (its hash) and JSON-escaped from that."""
    nonce = req.nonce
    kid = result.sign_kid
    assert nonce is not None and kid is not None
    if req.kid is not None and req.kid == result.prev_kid:
        kid = req.kid
    hosted = result.hosted
    assert hosted is not None
    prelude_template, slots, source_hash, head = _signed_revision(hosted)
    prelude = _prelude(prelude_template, slots, result, now)
    expires_at = result.expires_at
    expires = now + signing.LIFETIME
    hwid_hash = _text_hash(hwid)
    key_fields = (
        _json_str(iso(expires_at)),
        b"null" if expires_at is None else b"%d" % max(0, expires_at - now),
        result.total_executions,
        _json_str(result.discord_id),
        _json_str(result.note),
    )
    if bits is None:
        chunk = signing.chunk_hash(signing.digest(prelude), source_hash).hex().encode()
        values: tuple[bytes | int, ...] = (_json_lua(prelude), *key_fields)
    else:  # the key's watermarked copy is what runs
        splicer = splicers(hosted)
        assert splicer is not None
        marked_hash = signing.digest(_raw_splicer(hosted).splice(bits))
        chunk = signing.chunk_hash(signing.digest(prelude), marked_hash).hex().encode()
        values = (_json_lua(prelude), splicer.splice(bits), *key_fields)
    split = len(prelude)
    leaf = signing.leaf(
        kid, project_id, nonce, now, expires, _text_hash(req.script_key), hwid_hash, split, chunk
    )
    body = head % (*values, kid.encode(), nonce.encode(), now, expires, hwid_hash, split, chunk)
    return kid, leaf, body


def signed(
    signer: signing.Signer,
    project_id: str,
    result: Execution,
    req: schemas.ExecuteRequest,
    hwid: str,
    now: int,
    bits: tuple[int, ...] | None = None,
) -> bytes:
    """One valid verdict signed alone (a tree of one leaf: an empty path)."""
    kid, leaf, head = _unsigned(project_id, result, req, hwid, now, bits)
    sig, paths = signer.sign_leaves(project_id, kid, [leaf])
    return b"".join((head, paths[0], _SIG, sig, _END))


class SignedVerdicts:
    """The checks' ValidHook: signs a project's valid verdicts that asked for a signature and
    came in together, one signature per key id (and per ``signing.MAX_BATCH`` answers), and
    leaves each body in its SignJob. Runs where the replies are decoded: the handlers, woken
    once, find their answers ready."""

    def __init__(self, signer: signing.Signer, clock: Callable[[], int], secret: bytes) -> None:
        self._signer = signer
        self._clock = clock
        self._secret = secret  # the server secret: the watermark keys (handlers/leaks.py)

    def __call__(self, project_id: str, checks: list[tuple[Any, Execution]]) -> None:
        now = self._clock()
        by_kid: dict[str, list[tuple[SignJob, _Unsigned]]] = {}
        for job, result in checks:
            if result.sign_kid is None or not isinstance(job, SignJob):
                continue  # the project does not sign: the handler answers unsigned
            bits = key_bits(result.hosted, self._secret, project_id, job.req.script_key)
            part = _unsigned(project_id, result, job.req, job.hwid, now, bits)
            by_kid.setdefault(part[0], []).append((job, part))
        step = signing.MAX_BATCH
        for kid, group in by_kid.items():
            for start in range(0, len(group), step):
                chunk = group[start : start + step]
                sig, paths = self._signer.sign_leaves(
                    project_id, kid, [part[1] for _, part in chunk]
                )
                for (job, (_, _, head)), path in zip(chunk, paths, strict=True):
                    job.body = b"".join((head, path, _SIG, sig, _END))
