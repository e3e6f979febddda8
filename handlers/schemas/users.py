"""Self-service (handlers/users.py): the buyer's own key."""

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from handlers.schemas.base import Body, ProjectId


class SelfReset(Body):
    project_id: ProjectId


self_reset = msgspec.json.Decoder(SelfReset)


class SelfResetResult(msgspec.Struct):
    status: Literal["success"]
    keys_reset: int


class CooldownDetail(msgspec.Struct):
    """A 429: a cooldown says ``retry_after`` (seconds) in the body too; a rate limit does not."""

    detail: str
    retry_after: int | UnsetType = UNSET
