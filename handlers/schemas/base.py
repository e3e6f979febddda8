"""The base of every request body, the constrained types the areas share, the answers that
belong to no area."""

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

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


class Status(msgspec.Struct):
    status: Literal["success"]


class Health(msgspec.Struct):
    status: Literal["ok"]
