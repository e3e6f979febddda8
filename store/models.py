"""Records the store hands out, as msgspec structs (encoded straight to JSON by handlers)."""

import enum
import functools
import time
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class Base(msgspec.Struct, kw_only=True):
    """Shared options of every record."""


def iso(ts: str | int | None) -> str | None:
    """Epoch seconds (as stored) -> ``YYYY-MM-DDTHH:MM:SS`` UTC; empty/absent -> None."""
    if ts is None or ts == "":
        return None
    return _iso(int(ts))


@functools.lru_cache(maxsize=4096)  # the loader check formats each key's expiry on every run
def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))  # 4x faster than datetime


class Vendor(Base):
    vendor_id: str
    name: str
    discord_id: str | None
    created_at: str | None


class Project(Base):
    project_id: str
    name: str
    description: str
    ffa_active: bool
    is_active: bool
    webhook_url: str | None
    notify_enabled: bool
    silent_mode: bool
    hwid_reset_cooldown: int
    # Discord role sync (store/roles.py): the role the bot grants to holders of a valid key.
    discord_guild_id: str | None
    discord_role_id: str | None
    version: str
    created_at: str | None
    # Valid verdicts carry an Ed25519 signature the loader checks (docs/loader-security.md).
    signed_verdicts: bool
    # Each copy served carries its key's watermark (store/watermark.py).
    watermark: bool = False
    # The hosted source is the vendor's upload obfuscated with this preset (handlers/obfuscation),
    # and its last job (None: none since obfuscation was last off).
    obfuscation: str = "off"
    obfuscation_job: "ObfuscationJob | None" = None


class ObfuscationJob(Base):
    """The state of a project's last obfuscation job."""

    status: str  # pending (waits for a worker), running, done, failed
    error: str | None  # why it failed
    version: str | None  # the version its output is served as (done)
    started_at: str | None
    finished_at: str | None


class BuyerKey(Base):
    key_id: str
    project_id: str
    created_at: str | None
    redeemed: bool
    discord_id: str | None
    key_days: int
    key_hours: int
    key_minutes: int
    note: str | UnsetType = UNSET
    # "free": issued by the get-key page (docs/free-keys.md); "paid": sold or vendor-made.
    type: str = "paid"


class ActiveKey(Base):
    key_id: str
    project_id: str
    discord_id: str | None
    hwid: str | None
    hwid_resets: int
    total_executions: int
    last_execution: str | None
    last_reset: str | None
    redeemed_at: str | None
    expires_at: str | None
    banned: bool
    # The current ban's reason and, for a timed ban, its end (null: none, or permanent).
    ban_reason: str | None
    ban_expires_at: str | None
    note: str | UnsetType = UNSET
    type: str = "paid"  # "free" or "paid", as BuyerKey.type


PROJECT_BOOLS = ("ffa_active", "is_active", "notify_enabled", "silent_mode")


def project_from_hash(project_id: str, h: dict[str, str]) -> Project:
    return Project(
        project_id=project_id,
        name=h.get("name", ""),
        description=h.get("description", ""),
        ffa_active=h.get("ffa_active") == "1",
        is_active=h.get("is_active", "1") == "1",
        webhook_url=h.get("webhook_url") or None,
        notify_enabled=h.get("notify_enabled", "1") == "1",
        silent_mode=h.get("silent_mode") == "1",
        hwid_reset_cooldown=int(h.get("hwid_reset_cooldown", "86400")),
        discord_guild_id=h.get("discord_guild_id") or None,
        discord_role_id=h.get("discord_role_id") or None,
        version=h.get("version", "0.0.0"),
        created_at=iso(h.get("created_at")),
        signed_verdicts=h.get("signed_verdicts") == "1",
        watermark=h.get("watermark") == "1",
        **_obfuscation(h),
    )


# Why a job past its deadline failed: the instance running it stopped (a live one ends it, or
# fails it, within LEAF7_OBFUSCATE_TIMEOUT).
OBFUSCATION_LOST = "the instance running it stopped before it ended: upload again"


def _obfuscation(h: dict[str, str]) -> dict[str, Any]:
    """The obfuscation fields of a project hash; a job past its deadline is failed (its lease
    ended: nothing ever leaves it running)."""
    status = h.get("obf_status") or None
    error = h.get("obf_error") or None
    finished = h.get("obf_finished") or None
    if status in ("pending", "running") and int(h.get("obf_deadline") or 0) < time.time():
        status, error, finished = "failed", OBFUSCATION_LOST, h.get("obf_deadline")
    job = None
    if status is not None:
        job = ObfuscationJob(
            status=status,
            error=error,
            version=h.get("obf_version") or None,
            started_at=iso(h.get("obf_started") or None),
            finished_at=iso(finished),
        )
    return {"obfuscation": h.get("obfuscation") or "off", "obfuscation_job": job}


class SigningKey(Base):
    """A project's verdict-signing key id (the key itself is derived, never stored)."""

    kid: str
    created_at: int  # epoch s
    accepted_until: int | None = None  # a previous key's grace end (epoch s)


class Signing(Base):
    """A project's signed-verdict state: on or off, its key id and, during a rotation's grace
    period, the previous one (None once the grace ended)."""

    enabled: bool
    current: SigningKey | None
    previous: SigningKey | None


def signing_from_fields(values: list[str | None], now: int) -> Signing:
    """``values``: the project hash's ``SIGNING_FIELDS``, in order."""
    enabled, kid, created, prev_kid, prev_created, prev_until = values
    current = SigningKey(kid=kid, created_at=int(created or 0)) if kid else None
    previous = None
    if current and prev_kid and int(prev_until or 0) > now:
        previous = SigningKey(
            kid=prev_kid, created_at=int(prev_created or 0), accepted_until=int(prev_until or 0)
        )
    return Signing(enabled=enabled == "1", current=current, previous=previous)


SIGNING_FIELDS = (
    "signed_verdicts",
    "sign_kid",
    "sign_created",
    "sign_prev_kid",
    "sign_prev_created",
    "sign_prev_until",
)


def key_type(h: dict[str, str]) -> str:
    """A key's ``type``: ``free`` (the get-key page's) or ``paid`` (sold or vendor-made)."""
    return "free" if h.get("type") == "free" else "paid"


def buyer_key_from_hash(project_id: str, key_id: str, h: dict[str, str]) -> BuyerKey:
    note = h.get("note")
    return BuyerKey(
        key_id=key_id,
        project_id=project_id,
        created_at=iso(h.get("created_at")),
        redeemed="redeemed_at" in h,
        discord_id=h.get("discord_id") or None,
        key_days=int(h.get("key_days", "0")),
        key_hours=int(h.get("key_hours", "0")),
        key_minutes=int(h.get("key_minutes", "0")),
        note=UNSET if note is None else note,
        type=key_type(h),
    )


def active_key_from_hash(project_id: str, key_id: str, h: dict[str, str], *, now: int) -> ActiveKey:
    """``now`` (the store's clock, epoch s) decides whether a timed ban has ended: the key
    then reads as not banned, with no ban reason or end, though its hash still holds them."""
    note = h.get("note")
    until = h.get("ban_until")
    banned = h.get("banned") == "1" and (not until or now < int(until))
    return ActiveKey(
        key_id=key_id,
        project_id=project_id,
        discord_id=h.get("discord_id") or None,
        hwid=h.get("hwid") or None,
        hwid_resets=int(h.get("hwid_resets", "0")),
        total_executions=int(h.get("total_executions", "0")),
        last_execution=iso(h.get("last_execution")),
        last_reset=iso(h.get("last_reset")),
        redeemed_at=iso(h.get("redeemed_at")),
        expires_at=iso(h.get("expires_at")),
        banned=banned,
        ban_reason=h.get("ban_reason") if banned else None,
        ban_expires_at=iso(until) if banned else None,
        note=UNSET if note is None else note,
        type=key_type(h),
    )


def pairs(flat: list[str] | dict[str, str]) -> dict[str, str]:
    """A flat HGETALL reply ``[f1, v1, f2, v2, ...]`` (as scripts return it) -> dict.
    (fakeredis' raw connection replies to HGETALL with a dict already.)"""
    if isinstance(flat, dict):
        return flat
    it = iter(flat)
    return dict(zip(it, it, strict=True))


class Hosted(msgspec.Struct, frozen=True):
    """What a project's loaders receive after a valid check, as of one revision."""

    rev: str
    source: str
    script_name: str
    version: str
    macros: tuple[str, ...]
    # The watermark plan (store/watermark.py) when the project marks its copies, else "".
    marks: str = ""


class Limit(enum.StrEnum):
    """The limit a RATE_LIMITED loader check hit (its letter in lua/execute.lua's reply)."""

    EXECUTIONS = "x"  # the client's executions per window
    FAILURES = "f"  # the client is blocked after failed checks
    FAILURES_48 = "w"  # the client's IPv6 /48 is blocked after failed checks


class Execution(Base):
    """The outcome of one loader execution check (see lua/execute.lua, and
    store/execute_contract.py for its reply).

    ``code`` ``RATE_LIMITED`` is internal (the handler answers 429): ``limited`` is the limit
    hit, ``retry_after`` the seconds until the client may try again. ``remaining``/``reset``
    describe the client's execution window (None without a limit)."""

    code: str
    limited: Limit | None = None
    retry_after: int = 0
    remaining: int | None = None
    reset: int | None = None
    hosted: Hosted | None = None
    discord_id: str | None = None
    total_executions: int = 0
    expires_at: int | None = None
    note: str | None = None
    ffa: bool = False
    # Signed verdicts: the key id a valid verdict is signed with (None: unsigned), and the
    # previous key id while its grace period runs (handlers/signing.py).
    sign_kid: str | None = None
    prev_kid: str | None = None
    # False for a free key (docs/free-keys.md) and free-for-all runs: the L7_IsPremium macro.
    premium: bool = True


class Event(Base):
    type: str
    message: str
    project_id: str
    key_id: str | None
    timestamp: str | None


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-client limits of the execution check (0 = off); windows in seconds."""

    execute: int = 120
    execute_window: int = 60
    failures: int = 20
    failure_window: int = 600
    # Failures of an IPv6 client's /48 (all its /64s together) that block the /48.
    failures_48: int = 80


class RateLimit(msgspec.Struct, frozen=True):
    """The outcome of one hit on a rate limit."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window ends
    retry_after: int  # seconds (0 when allowed)
