"""Buyer and active keys (handlers/keys.py)."""

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from handlers.schemas.base import (
    Amount,
    Body,
    Days,
    DiscordId,
    Hours,
    Hwid,
    KeyId,
    Minutes,
    Note,
    ProjectId,
    StrictBody,
)


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


buyer_key_create = msgspec.json.Decoder(BuyerKeyCreate)
redeem = msgspec.json.Decoder(Redeem)
hwid_update = msgspec.json.Decoder(HwidUpdate)
note_update = msgspec.json.Decoder(NoteUpdate)
ban = msgspec.json.Decoder(Ban)


class Extend(Body):
    project_id: ProjectId
    key_days: Days = 0
    key_hours: Hours = 0
    key_minutes: Minutes = 0


extend = msgspec.json.Decoder(Extend)


class Deleted(msgspec.Struct):
    deleted: int


class Extended(msgspec.Struct):
    extended: int


class HwidStatus(msgspec.Struct):
    status: Literal["success"]
    hwid: str | None
