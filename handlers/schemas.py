"""msgspec structs for every request body, with their constraints. Decoders are built once."""

import functools
from datetime import datetime
from typing import Annotated, Literal, cast

import msgspec
from msgspec import UNSET, Meta, UnsetType

from handlers import ids


class Body(msgspec.Struct, kw_only=True):
    """Base of request bodies: unknown fields are ignored unless a body forbids them."""


class StrictBody(Body, forbid_unknown_fields=True):
    """A body whose unknown fields are an error (e.g. a misspelt project setting)."""


Name = Annotated[str, Meta(min_length=1, max_length=100)]
Description = Annotated[str, Meta(max_length=255)]
# Explicit ASCII ranges, not \s: Python's \s (the server) and ECMA-262's (JSON Schema, what
# clients validate with) disagree on \x1c-\x1f and \x85 (found by schemathesis).
WebhookUrl = Annotated[
    str,
    Meta(pattern=r"^https?://[^\x00-\x20\x7f/?#]+[^\x00-\x20\x7f]*$", max_length=2048),
]
Cooldown = Annotated[int, Meta(ge=0, le=10**9)]
ProjectId = Annotated[str, Meta(min_length=1, max_length=64)]
KeyId = Annotated[str, Meta(min_length=1, max_length=128)]
DiscordId = Annotated[
    str, Meta(pattern=ids.DISCORD_ID.pattern, max_length=ids.DISCORD_ID.max_length)
]
Hwid = Annotated[str, Meta(min_length=1, max_length=512)]
Note = Annotated[str, Meta(max_length=255)]
Days = Annotated[int, Meta(ge=0, le=36500)]
Hours = Annotated[int, Meta(ge=0, le=876000)]
Minutes = Annotated[int, Meta(ge=0, le=52560000)]
Amount = Annotated[int, Meta(ge=1, le=1000)]


class ProjectCreate(StrictBody):
    name: Name
    description: Description = ""
    ffa_active: bool = False
    webhook_url: WebhookUrl | None = None
    notify_enabled: bool = True
    silent_mode: bool = False
    hwid_reset_cooldown: Cooldown = 86400
    discord_guild_id: DiscordId | None = None
    discord_role_id: DiscordId | None = None


class ProjectUpdate(StrictBody):
    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    ffa_active: bool | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET
    webhook_url: WebhookUrl | UnsetType | None = UNSET
    notify_enabled: bool | UnsetType = UNSET
    silent_mode: bool | UnsetType = UNSET
    hwid_reset_cooldown: Cooldown | UnsetType = UNSET
    discord_guild_id: DiscordId | UnsetType | None = UNSET
    discord_role_id: DiscordId | UnsetType | None = UNSET


class BuyerKeyCreate(Body):
    project_id: ProjectId
    amount: Amount = 1
    key_days: Days = 30
    key_hours: Hours = 0
    key_minutes: Minutes = 0
    note: Note | None = None


class Redeem(Body):
    key_id: KeyId
    discord_id: DiscordId


class HwidUpdate(Body):
    new_hwid: Hwid | None


class NoteUpdate(StrictBody):
    """A key's note: a string sets it, null removes it."""

    note: Note | None


BanReason = Annotated[str, Meta(max_length=255)]
# A timed ban lasts at least a second and at most 10 years (of 366 days).
BanDuration = Annotated[int, Meta(ge=1, le=10 * 366 * 86400)]


class Ban(StrictBody):
    """An optional ban body: no ``duration`` is a permanent ban."""

    reason: BanReason | None = None
    duration: BanDuration | None = None


project_create = msgspec.json.Decoder(ProjectCreate)
project_update = msgspec.json.Decoder(ProjectUpdate)
buyer_key_create = msgspec.json.Decoder(BuyerKeyCreate)
redeem = msgspec.json.Decoder(Redeem)
hwid_update = msgspec.json.Decoder(HwidUpdate)
note_update = msgspec.json.Decoder(NoteUpdate)
ban = msgspec.json.Decoder(Ban)


def project_fields(body: ProjectCreate | ProjectUpdate) -> dict[str, str]:
    """The set fields of a project body, as stored in the project hash."""
    out: dict[str, str] = {}
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if value is UNSET:
            continue
        if isinstance(value, bool):
            out[name] = "1" if value else "0"
        elif value is None:
            out[name] = ""
        else:
            out[name] = str(value)
    return out


Version = Annotated[str, Meta(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,31}$", max_length=32)]


class SourceUpdate(Body):
    """The hosted source; ``source_update_type`` bounds its length by LEAF7_MAX_SOURCE."""

    source: str
    version: Version | None = None


@functools.cache
def source_update_type(max_source: int) -> type[SourceUpdate]:
    """SourceUpdate with ``source`` at most ``max_source`` characters (configurable, so the
    bound is set when the app is built; the body is capped at as many bytes as well)."""
    source = Annotated[str, Meta(max_length=max_source)]
    fields = [("source", source)]
    bounded = msgspec.defstruct("SourceUpdate", fields, bases=(SourceUpdate,), kw_only=True)
    return cast(type[SourceUpdate], bounded)


@functools.cache
def source_update_decoder(max_source: int) -> msgspec.json.Decoder[SourceUpdate]:
    return msgspec.json.Decoder(source_update_type(max_source))


class ExecuteRequest(Body):
    project_id: Annotated[str, Meta(max_length=64)]
    script_key: Annotated[str, Meta(max_length=128)] = ""
    hwid: Annotated[str, Meta(max_length=512)] | None = None


execute_request = msgspec.json.Decoder(ExecuteRequest)


class KeyInfo(msgspec.Struct):
    expires_at: str | None
    seconds_left: int | None
    total_executions: int
    discord_id: str | None
    note: str | None


class Verdict(msgspec.Struct):
    valid: bool
    code: str
    message: str


class ValidVerdict(msgspec.Struct):
    valid: bool
    code: str
    message: str
    script: str
    key: KeyInfo


class SelfReset(Body):
    project_id: ProjectId


class Extend(Body):
    project_id: ProjectId
    key_days: Days = 0
    key_hours: Hours = 0
    key_minutes: Minutes = 0


self_reset = msgspec.json.Decoder(SelfReset)
extend = msgspec.json.Decoder(Extend)


class BlacklistCreate(Body):
    ip: Annotated[str, Meta(max_length=64)] | None = None
    hwid: Hwid | None = None
    reason: Annotated[str, Meta(max_length=255)] = "Manual ban"


blacklist_create = msgspec.json.Decoder(BlacklistCreate)


# ---- store integrations (handlers/integrations.py) --------------------------------------------

Provider = Literal["sellix", "sellauth", "sellapp", "shoppy", "stripe"]
StoreProductId = Annotated[str, Meta(min_length=1, max_length=128)]
StoreSecret = Annotated[str, Meta(min_length=1, max_length=512)]


class KeyDuration(StrictBody):
    """The buyer key one unit of a store product buys (all 0: a lifetime key)."""

    key_days: Days = 30
    key_hours: Hours = 0
    key_minutes: Minutes = 0


Products = Annotated[dict[StoreProductId, KeyDuration], Meta(min_length=1, max_length=100)]


class IntegrationCreate(StrictBody):
    provider: Provider
    secret: StoreSecret
    products: Products


class IntegrationUpdate(StrictBody):
    secret: StoreSecret | UnsetType = UNSET
    products: Products | UnsetType = UNSET


class IntegrationOut(msgspec.Struct):
    """An integration (never its secret) and the URL to paste into the store."""

    integration_id: str
    project_id: str
    provider: str
    products: dict[str, KeyDuration]
    url: str
    created_at: str | None


integration_create = msgspec.json.Decoder(IntegrationCreate)
integration_update = msgspec.json.Decoder(IntegrationUpdate)


class SelfResetResult(msgspec.Struct):
    status: Literal["success"]
    keys_reset: int


class CooldownDetail(msgspec.Struct):
    """A 429: a cooldown says ``retry_after`` (seconds) in the body too; a rate limit does not."""

    detail: str
    retry_after: int | UnsetType = UNSET


class Deleted(msgspec.Struct):
    deleted: int


class Extended(msgspec.Struct):
    extended: int


class Overview(msgspec.Struct):
    active_projects: int
    total_executions: int
    active_keys: int
    api_status: Literal["Operational"]


class ChartStats(msgspec.Struct):
    total_executions: int
    peak: int
    average_per_hour: float


class Chart(msgspec.Struct):
    stats: ChartStats
    chartData: list[int]
    timeLabels: list[str]


class RotatedApiKey(msgspec.Struct):
    api_key: str
    previous_key_expires_at: str


# ---- response bodies that are not store records ----------------------------------------------


class Status(msgspec.Struct):
    status: Literal["success"]


class Health(msgspec.Struct):
    status: Literal["ok"]


class HwidStatus(msgspec.Struct):
    status: Literal["success"]
    hwid: str | None


# Every verdict code of the loader check and its message, declared once (the Lua script
# store/lua/execute.lua returns the codes).
VERDICTS: dict[str, str] = {
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
Code = Annotated[str, Meta(extra_json_schema={"enum": list(VERDICTS)})]


class ExecuteVerdict(msgspec.Struct):
    """A verdict (documentation of ``Verdict`` and ``ValidVerdict``): ``script`` and ``key``
    only when ``valid``."""

    valid: bool
    code: Code
    message: str
    script: str | UnsetType = UNSET
    key: KeyInfo | UnsetType = UNSET


# ---- export and import (handlers/transfer.py) -------------------------------------------------

# A time: ISO 8601 / RFC 3339, with an offset, or without one for UTC (as leaf7 writes them).
Time = Annotated[datetime, Meta(extra_json_schema={"format": "date-time"})]
ImportedKeyId = Annotated[
    str, Meta(pattern=ids.IMPORTED_KEY_ID.pattern, max_length=ids.IMPORTED_KEY_ID.max_length)
]
Count = Annotated[int, Meta(ge=0, le=10**15)]
ImportBanReason = Annotated[str, Meta(max_length=255)]


class ImportKey(Body):
    """One key brought in from another system (or from an export of leaf7: the other fields
    of an export line, such as ``type``, are ignored). A redeemed key is one with
    ``redeemed: true``, or, without ``redeemed``, one that has any of the fields only a
    redeemed key has (``discord_id``, ``hwid``, ``expires_at``, ``banned: true``, …)."""

    key_id: ImportedKeyId
    redeemed: bool | None = None
    discord_id: DiscordId | None = None
    hwid: Hwid | None = None
    expires_at: Time | None = None
    key_days: Days | None = None
    key_hours: Hours | None = None
    key_minutes: Minutes | None = None
    note: Note | None = None
    banned: bool = False
    ban_reason: ImportBanReason | None = None
    ban_expires_at: Time | None = None
    created_at: Time | None = None
    redeemed_at: Time | None = None
    total_executions: Count = 0
    hwid_resets: Count = 0
    last_execution: Time | None = None
    last_reset: Time | None = None
    last_self_reset: Time | None = None


class KeyImport(Body):
    project_id: ProjectId
    keys: Annotated[list[ImportKey], Meta(max_length=1000)]


key_import = msgspec.json.Decoder(KeyImport)
