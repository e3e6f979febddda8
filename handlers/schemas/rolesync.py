"""Discord role sync (handlers/rolesync.py)."""

from typing import Annotated

import msgspec
from msgspec import Meta

from handlers.schemas.base import Body

# A role sync change_id: <project id or "revoke">:<stream entry id>:<0 or 1> (store/roles.py).
ChangeId = Annotated[str, Meta(min_length=1, max_length=96)]


class RoleAck(Body):
    change_ids: Annotated[list[ChangeId], Meta(max_length=1000)]


class RoleAckResult(msgspec.Struct):
    acked: int  # how many were pending and are now acknowledged (others are ignored)


role_ack = msgspec.json.Decoder(RoleAck)
