"""Free keys (handlers/freekeys/, docs/free-keys.md)."""

from typing import Annotated, ClassVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from handlers.schemas.base import Body, StrictBody

# Printable ASCII but space, quotes and angle brackets: spelled as ranges, so every regex
# dialect (msgspec's Python re, the OpenAPI clients' ECMAScript) reads the same set.
FreeLink = Annotated[str, Meta(max_length=500, pattern=r"^https?://[!#-&(-;=?-~]+$")]
FreeLinkId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class FreeWorkInk(StrictBody, kw_only=True, tag_field="provider", tag="workink"):
    """A Work.ink checkpoint: the link, and its id at Work.ink (``info.linkId``)."""

    provider: ClassVar[str] = "workink"
    link: FreeLink
    link_id: FreeLinkId


class FreeLinkvertise(StrictBody, kw_only=True, tag_field="provider", tag="linkvertise"):
    """A Linkvertise checkpoint: the link, and the publisher anti-bypass ``token`` (a secret:
    omitted on a change, the stored one is kept)."""

    provider: ClassVar[str] = "linkvertise"
    link: FreeLink
    token: Annotated[str, Meta(min_length=1, max_length=256)] | None = None


class FreeLootLabs(StrictBody, kw_only=True, tag_field="provider", tag="lootlabs"):
    """A LootLabs checkpoint: the link (its postback URL is made by leaf7)."""

    provider: ClassVar[str] = "lootlabs"
    link: FreeLink


FreeCheckpoint = FreeWorkInk | FreeLinkvertise | FreeLootLabs


class FreeTurnstile(StrictBody, kw_only=True):
    """Cloudflare Turnstile before the first checkpoint (``secret`` omitted: kept)."""

    site_key: Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
    secret: Annotated[str, Meta(min_length=1, max_length=256)] | None = None


class FreeKeysSettings(StrictBody, kw_only=True):
    enabled: bool = False
    key_hours: Annotated[int, Meta(ge=1, le=720)] = 24
    keys_per_day: Annotated[int, Meta(ge=1, le=100)] = 1
    min_seconds: Annotated[int, Meta(ge=0, le=3600)] = 10
    checkpoints: Annotated[list[FreeCheckpoint], Meta(min_length=1, max_length=5)]
    turnstile: FreeTurnstile | None = None
    # "Extend" on the key page: the checkpoints again add key_hours to a live key, at most
    # max_extends times per key.
    allow_extend: bool = False
    max_extends: Annotated[int, Meta(ge=0, le=10)] = 1


free_keys_settings = msgspec.json.Decoder(FreeKeysSettings)


class FreeCheckpointOut(msgspec.Struct):
    provider: str
    link: str
    link_id: str | None
    has_token: bool  # a Linkvertise token is stored (never returned)
    return_url: str  # paste as the link's destination at the provider
    postback_url: str | UnsetType = UNSET  # LootLabs: paste as the postback URL


class FreeTurnstileOut(msgspec.Struct):
    site_key: str


class FreeKeysOut(msgspec.Struct):
    enabled: bool
    key_hours: int
    keys_per_day: int
    min_seconds: int
    checkpoints: list[FreeCheckpointOut]
    turnstile: FreeTurnstileOut | None
    allow_extend: bool
    max_extends: int


class GetKeyRequest(Body):
    project_id: Annotated[str, Meta(max_length=64)]
    # (the executor's fingerprint header outranks it, as for checks)
    hwid: Annotated[str, Meta(min_length=1, max_length=512)]


get_key_request = msgspec.json.Decoder(GetKeyRequest)


class GetKeyUrl(msgspec.Struct):
    url: str


class FreeKeysDay(msgspec.Struct):
    """One UTC day of a project's get-key funnel."""

    day: str  # YYYY-MM-DD
    page_views: int
    started: list[int]  # per checkpoint
    completed: list[int]  # per checkpoint
    keys_issued: int
    keys_extended: int
    refusals: dict[str, int]  # reason -> count
