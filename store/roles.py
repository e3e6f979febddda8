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

Deleting a project that has a role queues every Discord user of the project (the key ->
Discord id hash) on the guild's revoke stream before any key is deleted (store/projects.py):
that stream outlives the project, and the bots of the guild read it with the same consumer
group, claim and acknowledgement as a role stream. Whether to remove the role is decided when
it is applied: a user who still holds a valid key in another project of the vendor granting
the same role in the same guild (``granting``) keeps it.
"""

import asyncio
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


class Revoke(NamedTuple):
    """An entry of a guild's revoke stream: remove ``role`` from the user (a deleted project
    of ``vendor_id`` granted it)."""

    entry_id: str
    fields: dict[str, str]

    @property
    def guild(self) -> str:
        return self.fields.get("guild", "")

    @property
    def role(self) -> str:
        return self.fields.get("role", "")

    @property
    def discord_id(self) -> str:
        return self.fields.get("discord_id", "")

    @property
    def vendor_id(self) -> str:
        return self.fields.get("vendor_id", "")


async def _ensure_group(core: Core, stream: str) -> None:
    try:
        await core.call("XGROUP", "CREATE", stream, GROUP, "0", "MKSTREAM")
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def _read(core: Core, stream: str, consumer: str, count: int) -> list[tuple[str, Any]]:
    reply = await core.call(
        "XREADGROUP", "GROUP", GROUP, consumer, "COUNT", count, "STREAMS", stream, ">"
    )
    if not reply:
        return []
    streams = list(reply.items()) if isinstance(reply, dict) else list(reply)
    return [e for _name, entries in streams for e in entries or ()]


async def _claim(
    core: Core, stream: str, consumer: str, min_idle: float, count: int
) -> list[tuple[str, Any]]:
    reply = await core.call(
        "XAUTOCLAIM", stream, GROUP, consumer, int(min_idle * 1000), "0-0", "COUNT", count
    )
    return list(reply[1] or ())


async def _pending(core: Core, stream: str) -> int:
    try:
        reply = await core.call("XPENDING", stream, GROUP)
    except ResponseError as exc:
        if "NOGROUP" in str(exc):
            return 0
        raise
    return int(reply[0] if isinstance(reply, list | tuple) else reply["pending"])


class Roles:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def ensure_group(self, project_id: str) -> None:
        """The consumer group, reading the stream from its start (entries written before the
        first bot ran are applied too)."""
        await _ensure_group(self.core, keyspace.role_changes(project_id))

    def _changes(self, project_id: str, entries: Any) -> list[RoleChange]:
        return [
            RoleChange(project_id, str(eid), pairs(f))
            for eid, f in entries or ()
            if f is not None  # (an entry deleted while pending)
        ]

    async def read(self, project_id: str, consumer: str, count: int) -> list[RoleChange]:
        """At most ``count`` new entries, now pending for ``consumer`` (never blocks)."""
        entries = await _read(self.core, keyspace.role_changes(project_id), consumer, count)
        return self._changes(project_id, entries)

    async def claim(
        self, project_id: str, consumer: str, min_idle: float, count: int
    ) -> list[RoleChange]:
        """At most ``count`` pending entries idle for ``min_idle`` seconds or more (their bot
        died, or failed to reach Discord), now ``consumer``'s."""
        stream = keyspace.role_changes(project_id)
        return self._changes(project_id, await _claim(self.core, stream, consumer, min_idle, count))

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
        return await _pending(self.core, keyspace.role_changes(project_id))

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

    # ---- the revoke streams (per guild): roles granted by a deleted project ----------------

    async def revoke_guild(self, project_id: str) -> str:
        """The guild whose revoke stream the project's bot reads: the project's (or, while it
        is being deleted, its tombstone's), else the one its delete queued removals on; ''
        when none."""
        found = await asyncio.gather(
            self.core.call("HGET", keyspace.project(project_id), "discord_guild_id"),
            self.core.call("HGET", keyspace.project_tombstone(project_id), "discord_guild_id"),
            self.core.call("GET", keyspace.role_revoke_guild(project_id)),
        )
        return next((str(g) for g in found if g), "")

    async def ensure_revoke_group(self, guild: str) -> None:
        await _ensure_group(self.core, keyspace.role_revokes(guild))

    def _revokes(self, entries: list[tuple[str, Any]]) -> list[Revoke]:
        return [Revoke(str(eid), pairs(f)) for eid, f in entries if f is not None]

    async def read_revokes(self, guild: str, consumer: str, count: int) -> list[Revoke]:
        """At most ``count`` new entries of the guild's revoke stream, now pending for
        ``consumer`` (never blocks)."""
        stream = keyspace.role_revokes(guild)
        return self._revokes(await _read(self.core, stream, consumer, count))

    async def claim_revokes(
        self, guild: str, consumer: str, min_idle: float, count: int
    ) -> list[Revoke]:
        """At most ``count`` pending revoke entries idle for ``min_idle`` seconds or more."""
        stream = keyspace.role_revokes(guild)
        return self._revokes(await _claim(self.core, stream, consumer, min_idle, count))

    async def touch_revokes(self, guild: str, consumer: str, entry_ids: list[str]) -> None:
        if entry_ids:
            await self.core.call(
                "XCLAIM", keyspace.role_revokes(guild), GROUP, consumer, 0, *entry_ids, "JUSTID"
            )

    async def ack_revoke(self, guild: str, entry_id: str) -> None:
        """Applied: acknowledged and deleted from the guild's revoke stream."""
        stream = keyspace.role_revokes(guild)
        await self.core.call("XACK", stream, GROUP, entry_id)
        await self.core.call("XDEL", stream, entry_id)

    async def revokes_pending(self, guild: str) -> int:
        """Revoke entries read but not yet acknowledged (tests, operations)."""
        return await _pending(self.core, keyspace.role_revokes(guild))

    async def granting(self, vendor_id: str, guild: str, role: str) -> list[str]:
        """The vendor's projects that grant ``role`` in ``guild`` now (SSCAN batches of the
        vendor's project index, one pipelined HMGET per project)."""
        found: list[str] = []
        async for ids in self.core.members(keyspace.vendor_projects(vendor_id)):
            settings = await asyncio.gather(
                *(
                    self.core.call(
                        "HMGET",
                        keyspace.project(p),
                        "vendor_id",
                        "discord_guild_id",
                        "discord_role_id",
                    )
                    for p in ids
                )
            )
            found += [
                p
                for p, (v, g, r) in zip(ids, settings, strict=True)
                if (v, g, r) == (vendor_id, guild, role)
            ]
        return found
