"""Projects (handlers/projects.py): a project's settings, its hosted source, its
verdict-signing key."""

import functools
from typing import Annotated, Literal, cast

import msgspec
from msgspec import UNSET, Meta, UnsetType

from handlers.schemas.base import (
    Body,
    Cooldown,
    Description,
    DiscordId,
    Name,
    StrictBody,
    WebhookUrl,
)

Obfuscation = Literal["off", "light", "medium", "strong"]


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
    # New projects sign their valid verdicts (docs/loader-security.md).
    signed_verdicts: bool = True
    # Each copy served carries its key's watermark (docs/loader-security.md#leaks).
    watermark: bool = False
    # The hosted script is obfuscated once per upload (docs/loader-security.md#obfuscation).
    obfuscation: Obfuscation = "off"


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
    signed_verdicts: bool | UnsetType = UNSET
    watermark: bool | UnsetType = UNSET
    obfuscation: Obfuscation | UnsetType = UNSET


project_create = msgspec.json.Decoder(ProjectCreate)
project_update = msgspec.json.Decoder(ProjectUpdate)


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


class SigningPrevious(msgspec.Struct):
    """A rotated-out verdict-signing key, still accepted until ``accepted_until``."""

    kid: str
    public_key: str
    created_at: str | None
    accepted_until: str | None


class SigningInfo(msgspec.Struct):
    """A project's verdict-signing key (docs/loader-security.md): ``public_key`` is the
    Ed25519 public key in hex (64 digits); the private key is derived on the server, never
    shown or stored."""

    signed_verdicts: bool
    kid: str
    public_key: str
    created_at: str | None
    previous: SigningPrevious | None
