"""Export and import (handlers/transfer.py)."""

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from handlers import ids
from handlers.schemas.base import Body, Days, DiscordId, Hours, Hwid, Minutes, Note, ProjectId

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
