"""Discord role sync: the store side (the bot's consumer is service/rolesync.py).

While a project has a Discord role (``discord_guild_id``, ``discord_role_id``), the scripts
that change a Discord user's keys (redeem, the loader's first run of a key that names its
user, ban, unban, extend) append the user to the project's role stream in the same step
(store/lua/_common.lua ``role_sync``), and a project update that touches the role settings or
``is_active`` appends ``*`` (every user). The bot reads the stream through the consumer group
``roles``: an entry is acknowledged and deleted only after Discord answered, so a bot that
died holding entries leaves them pending, and another bot (or the same, restarted) claims
them once idle for a while. What to apply is decided when it is applied, from the user's keys
(``state``), never from the entry: replays and reordering are harmless.

Expiry is found by a sweep: each user whose answer may change later (a key's expiry, a timed
ban's end) is in the project's re-check set with that time as score; ``sweep`` moves the due
ones to the stream in one script. Redis' keyspace notifications are not used: they are not
delivered to a client that is not connected at that moment.
"""

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from redis.exceptions import ResponseError

from store import keyspace
from store.core import Core
from store.models import pairs

GROUP = "roles"
EVERYONE = "*"  # the entry's discord_id when every user of the project is to be re-checked


class RoleChange(NamedTuple):
    project_id: str
    entry_id: str
    fields: dict[str, str]

    @property
    def discord_id(self) -> str:
        return self.fields.get("discord_id", "")


class RoleState(NamedTuple):
    guild: str  # '' when the project has no Discord role (or is gone)
    role: str
    holds: bool  # the user holds a valid key in the project (and it is active)


class Roles:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def ensure_group(self, project_id: str) -> None:
        """The consumer group, reading the stream from its start (entries written before the
        first bot ran are applied too)."""
        try:
            await self.core.call(
                "XGROUP", "CREATE", keyspace.role_changes(project_id), GROUP, "0", "MKSTREAM"
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _changes(self, project_id: str, entries: Any) -> list[RoleChange]:
        return [
            RoleChange(project_id, str(eid), pairs(f))
            for eid, f in entries or ()
            if f is not None  # (an entry deleted while pending)
        ]

    async def read(self, project_id: str, consumer: str, count: int) -> list[RoleChange]:
        """At most ``count`` new entries, now pending for ``consumer`` (never blocks)."""
        reply = await self.core.call(
            "XREADGROUP",
            "GROUP",
            GROUP,
            consumer,
            "COUNT",
            count,
            "STREAMS",
            keyspace.role_changes(project_id),
            ">",
        )
        if not reply:
            return []
        streams = list(reply.items()) if isinstance(reply, dict) else list(reply)
        return [c for _name, entries in streams for c in self._changes(project_id, entries)]

    async def claim(
        self, project_id: str, consumer: str, min_idle: float, count: int
    ) -> list[RoleChange]:
        """At most ``count`` pending entries idle for ``min_idle`` seconds or more (their bot
        died, or failed to reach Discord), now ``consumer``'s."""
        reply = await self.core.call(
            "XAUTOCLAIM",
            keyspace.role_changes(project_id),
            GROUP,
            consumer,
            int(min_idle * 1000),
            "0-0",
            "COUNT",
            count,
        )
        return self._changes(project_id, reply[1])

    async def touch(self, project_id: str, consumer: str, entry_ids: list[str]) -> None:
        """Still working on these (a long wait for Discord): their idle time restarts, so no
        other bot claims them meanwhile."""
        if entry_ids:
            await self.core.call(
                "XCLAIM",
                keyspace.role_changes(project_id),
                GROUP,
                consumer,
                0,
                *entry_ids,
                "JUSTID",
            )

    async def ack(self, project_id: str, entry_id: str) -> None:
        """Applied: acknowledged and deleted from the stream."""
        stream = keyspace.role_changes(project_id)
        await self.core.call("XACK", stream, GROUP, entry_id)
        await self.core.call("XDEL", stream, entry_id)

    async def pending(self, project_id: str) -> int:
        """Entries read but not yet acknowledged (tests, operations)."""
        try:
            reply = await self.core.call("XPENDING", keyspace.role_changes(project_id), GROUP)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                return 0
            raise
        return int(reply[0] if isinstance(reply, list | tuple) else reply["pending"])

    async def state(self, project_id: str, discord_id: str) -> RoleState:
        """What the user's role should be now (store/lua/role_state.lua); also sets when the
        user is to be checked again."""
        guild, role, holds = await self.core.script(
            self.core.scripts.role_state,
            [
                keyspace.project(project_id),
                keyspace.discord_index(project_id, discord_id),
                keyspace.role_checks(project_id),
            ],
            [keyspace.key_prefix(project_id), self.core.now(), discord_id],
        )
        return RoleState(str(guild), str(role), holds == "1")

    async def sweep(self, project_id: str, count: int) -> int:
        """Moves at most ``count`` users whose re-check time has come to the stream."""
        moved: int = await self.core.script(
            self.core.scripts.role_sweep,
            [keyspace.role_checks(project_id), keyspace.role_changes(project_id)],
            [self.core.now(), count],
        )
        return int(moved)

    async def users(self, project_id: str) -> AsyncIterator[list[str]]:
        """The Discord users with an active key in the project, in HSCAN batches of the key ->
        Discord id hash (a user with several keys may come more than once)."""
        cursor = "0"
        while True:
            cursor, flat = await self.core.call(
                "HSCAN", keyspace.key_discords(project_id), cursor, "COUNT", 500
            )
            ids = sorted(set(pairs(flat).values()))
            if ids:
                yield ids
            if str(cursor) == "0":
                return
