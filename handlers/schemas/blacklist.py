"""The blacklist (handlers/blacklist.py)."""

from typing import Annotated

import msgspec
from msgspec import Meta

from handlers.schemas.base import Body, Hwid


class BlacklistCreate(Body):
    ip: Annotated[str, Meta(max_length=64)] | None = None
    hwid: Hwid | None = None
    reason: Annotated[str, Meta(max_length=255)] = "Manual ban"


blacklist_create = msgspec.json.Decoder(BlacklistCreate)
