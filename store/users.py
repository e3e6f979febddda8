"""Self-service: what a Discord user may do to their own keys (through the vendor's bot)."""

from typing import Any

from store import keyspace
from store.core import Core
from store.errors import KeyBanned, KeyNotFound, ResetCooldown


class Users:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def self_reset_hwid(
        self, vendor_id: str, project_id: str, discord_id: str
    ) -> list[tuple[str, str]]:
        """Resets the HWIDs of a user's keys in a project, honouring the cooldown.
        Returns (key_id, previous HWID) for every key that was reset (may be none)."""
        res: list[Any] = await self.core.script(
            self.core.scripts.self_reset_hwid,
            [
                keyspace.project(project_id),
                keyspace.discord_index(project_id, discord_id),
                *keyspace.event_streams(project_id),
            ],
            [vendor_id, self.core.now(), keyspace.key_prefix(project_id)],
            durable=True,
        )
        status = res[0]
        if status == "NONE":
            raise KeyNotFound
        if status == "BANNED":
            raise KeyBanned
        if status == "COOLDOWN":
            raise ResetCooldown(int(res[1]))
        it = iter(res[1:])
        return list(zip(it, it, strict=True))
