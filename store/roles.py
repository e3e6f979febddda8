"""Discord role sync: the store side of the role sync routes (handlers/rolesync.py); the
vendor's bot (service/rolesync.py) applies what they hand out and acknowledges it.

While a project has a Discord role (``discord_guild_id``, ``discord_role_id``), the scripts
that change a Discord user's keys (redeem, the loader's first run of a key that names its
user, ban, unban, extend) append the user to the project's role stream in the same step
(store/lua/_common.lua ``role_sync``), and a project update that touches the role settings or
``is_active`` appends ``*`` (every user). An import appends nothing: it only says who redeemed
a key, which anyone can claim (the role follows once the vendor acts on the key or saves the
project's role settings).

``changes`` reads the streams of the vendor's projects, and the vendor's revoke stream,
through the consumer group ``roles``: an entry handed out stays pending until the vendor's
bot acknowledges it (``ack``: XACK + XDEL in one script, for the owner only); one handed out
and not acknowledged within the lease is handed out again (XAUTOCLAIM), so a bot that died
between reading and acknowledging loses nothing, and two bots never get the same entry within
a lease. What to apply (``grant``) is decided when an entry is handed out, from the user's
keys at that moment, never from the entry: replays and reordering are harmless. An
acknowledgement whose grant no longer matches the keys (they changed while the bot was busy:
another bot may have applied the newer change first) queues the user again.

Expiry is found by a sweep that ``changes`` runs on each of its reads: each user whose answer
may change later (a key's expiry, a timed ban's end) is in the project's re-check set with
that time as score; the due ones move to the stream in one script. Redis' keyspace
notifications are not used: they are not delivered to a client that is not connected then.

Deleting a project that has a role queues every Discord user of the project on the vendor's
revoke stream before any key is deleted (store/projects.py): that stream outlives the project
and only that vendor's role sync reads it (a project may name any guild, so nothing of one
vendor may reach another vendor's bot). Whether to remove the role is decided when handed
out: a user who still holds a valid key in another project of the vendor granting the same
role in the same guild (``granting``) keeps it (``grant`` true).
"""

import asyncio
import random
import re
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import msgspec
from redis.exceptions import ResponseError

from store import keyspace
from store.core import Core
from store.models import pairs

GROUP = "roles"
CONSUMER = "leaf7"  # one consumer name: the lease (XAUTOCLAIM's idle time) decides re-delivery
EVERYONE = "*"  # the entry's discord_id when every user of the project is to be re-checked
REVOKE = "revoke"  # the source part of a change_id from the vendor's revoke stream
_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")
_QUEUE_BATCH = 500  # users per role_queue.lua call when an entry '*' is expanded


class RoleChange(msgspec.Struct):
    """One role to grant or remove: ``PUT`` (``grant``) or ``DELETE``
    ``/guilds/{guild_id}/members/{discord_id}/roles/{role_id}``; acknowledge its
    ``change_id`` once Discord answered."""

    change_id: str
    project_id: str
    guild_id: str
    role_id: str
    discord_id: str
    grant: bool


class RoleState(NamedTuple):
    guild: str  # '' when the project has no Discord role (or is gone)
    role: str
    holds: bool  # the user holds a valid key in the project (and it is active)


class _Entry(NamedTuple):
    source: str  # a project id, or REVOKE
    entry_id: str
    fields: dict[str, str]


def change_id(source: str, entry_id: str, grant: bool) -> str:
    """``<project id or revoke>:<entry id>:<1 or 0>``: the stream, its entry, and the grant
    handed out (an acknowledgement compares it with the keys then)."""
    return f"{source}:{entry_id}:{int(grant)}"


def parse_change_id(value: str) -> tuple[str, str, bool] | None:
    source, _, rest = value.partition(":")
    entry_id, _, grant = rest.partition(":")
    if not source or not _ENTRY_ID.fullmatch(entry_id) or grant not in ("0", "1"):
        return None
    return source, entry_id, grant == "1"


class Roles:
    def __init__(self, core: Core) -> None:
        self.core = core

    # ---- the streams, through the consumer group ---------------------------------------

    async def _group(self, stream: str, *command: Any) -> Any:
        """``command`` on the stream's consumer group, created (from the stream's start: what
        was queued before the first read is handed out too) when missing; None when the
        stream does not exist."""
        try:
            return await self.core.call(*command)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        try:
            await self.core.call("XGROUP", "CREATE", stream, GROUP, "0")
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                return None  # (no stream: nothing queued yet, or the project is gone)
        return await self.core.call(*command)

    async def _take(self, stream: str, count: int, lease: float) -> list[tuple[str, Any]]:
        """At most ``count`` entries: handed out before and not acknowledged within the lease,
        then new ones; now pending (their lease starts)."""
        claimed = await self._group(
            stream,
            "XAUTOCLAIM", stream, GROUP, CONSUMER, int(lease * 1000), "0-0", "COUNT", count,
        )  # fmt: skip
        entries = list(claimed[1] or ()) if claimed else []
        if len(entries) < count:
            reply = await self._group(
                stream,
                "XREADGROUP", "GROUP", GROUP, CONSUMER,
                "COUNT", count - len(entries), "STREAMS", stream, ">",
            )  # fmt: skip
            if reply:
                streams = list(reply.items()) if isinstance(reply, dict) else list(reply)
                entries += [e for _name, found in streams for e in found or ()]
        return [(str(eid), f) for eid, f in entries if f is not None]  # (deleted meanwhile)

    async def role_projects(self, vendor_id: str) -> list[str]:
        """The vendor's projects with a role stream (only a project that has, or had, a
        Discord role has one)."""
        found: list[str] = []
        async for ids in self.core.members(keyspace.vendor_projects(vendor_id)):
            exists = await asyncio.gather(
                *(self.core.call("EXISTS", keyspace.role_changes(p)) for p in ids)
            )
            found += [p for p, e in zip(ids, exists, strict=True) if e]
        return found

    async def changes(self, vendor_id: str, limit: int, lease: float) -> list[RoleChange]:
        """At most ``limit`` changes of the vendor's projects and revoke stream, never
        blocking: due users swept in first, entries whose lease ran out, then new ones. Entries
        with nothing to apply (``*``, expanded into one entry per user; a project without a
        role) are acknowledged here."""
        projects = await self.role_projects(vendor_id)
        random.shuffle(projects)  # (a busy project does not starve the others)
        await asyncio.gather(*(self.sweep(p, limit) for p in projects))
        out: list[RoleChange] = []
        for pid in projects:
            if len(out) >= limit:
                break
            out += await self._project_changes(vendor_id, pid, limit - len(out), lease)
        if len(out) < limit:
            out += await self._revoke_changes(vendor_id, limit - len(out), lease)
        return out

    async def _project_changes(
        self, vendor_id: str, pid: str, count: int, lease: float
    ) -> list[RoleChange]:
        """Entries read and acknowledged here (``*`` expanded, nothing to apply) make room:
        read again until ``count`` changes are found or the stream has no more."""
        out: list[RoleChange] = []
        while len(out) < count:
            found, settled = await self._project_round(vendor_id, pid, count - len(out), lease)
            out += found
            if not settled:
                break
        return out

    async def _project_round(
        self, vendor_id: str, pid: str, count: int, lease: float
    ) -> tuple[list[RoleChange], int]:
        entries = [
            _Entry(pid, eid, pairs(f))
            for eid, f in await self._take(keyspace.role_changes(pid), count, lease)
        ]
        done: list[str] = []
        users: list[_Entry] = []
        for e in entries:
            user = e.fields.get("discord_id", "")
            if user == EVERYONE:
                await self._expand(pid, e.fields)
                done.append(e.entry_id)
            elif user:
                users.append(e)
            else:
                done.append(e.entry_id)
        states = await asyncio.gather(*(self.state(pid, e.fields["discord_id"]) for e in users))
        out: list[RoleChange] = []
        for e, state in zip(users, states, strict=True):
            user = e.fields["discord_id"]
            old_guild, old_role = e.fields.get("old_guild", ""), e.fields.get("old_role", "")
            if old_guild and old_role:  # the role it had before a change: removed, unless
                now = (state.guild, state.role) == (old_guild, old_role) and state.holds
                out.append(RoleChange(change_id(pid, e.entry_id, now), pid, old_guild, old_role,
                                      user, now))  # fmt: skip
            elif state.guild and state.role:
                grant = state.holds
                out.append(RoleChange(change_id(pid, e.entry_id, grant), pid, state.guild,
                                      state.role, user, grant))  # fmt: skip
            else:
                done.append(e.entry_id)  # no role to sync (any more)
        if done:
            await self._ack(vendor_id, pid, done)
        return out, len(done)

    async def _expand(self, pid: str, fields: dict[str, str]) -> None:
        """An entry ``*``: one entry per user of the project (and one removing the old role
        from them when it changed), in bounded script calls. Interrupted, the ``*`` entry is
        handed out again after the lease and expanded again (a user checked twice is
        harmless)."""
        old = (fields.get("old_guild", ""), fields.get("old_role", ""))
        async for users in self.users(pid):
            for at in range(0, len(users), _QUEUE_BATCH):
                await self._queue(pid, "PROJECT", *old, users[at : at + _QUEUE_BATCH])

    async def _queue(
        self, pid: str, why: str, old_guild: str, old_role: str, users: list[str]
    ) -> None:
        await self.core.script(
            self.core.scripts.role_queue,
            [keyspace.project(pid), keyspace.role_changes(pid)],
            [why, old_guild, old_role, *users],
        )

    async def _revoke_changes(self, vendor_id: str, count: int, lease: float) -> list[RoleChange]:
        stream = keyspace.role_revokes(vendor_id)
        if not await self.core.call("EXISTS", stream):
            return []
        granting: dict[tuple[str, str], list[str]] = {}  # for this read
        out: list[RoleChange] = []
        done: list[str] = []
        for eid, flat in await self._take(stream, count, lease):
            f = pairs(flat)
            guild, role, user = f.get("guild", ""), f.get("role", ""), f.get("discord_id", "")
            if not (guild and role and user):
                done.append(eid)
                continue
            if (guild, role) not in granting:
                granting[(guild, role)] = await self.granting(vendor_id, guild, role)
            keeps = bool(await self._holding(granting[(guild, role)], guild, role, user))
            out.append(RoleChange(change_id(REVOKE, eid, keeps), f.get("project_id", ""),
                                  guild, role, user, keeps))  # fmt: skip
        if done:
            await self._ack(vendor_id, REVOKE, done)
        return out

    async def _holding(self, projects: list[str], guild: str, role: str, user: str) -> list[str]:
        """Which of ``projects`` grant the user ``role`` in ``guild`` now."""
        states = await asyncio.gather(*(self.state(p, user) for p in projects))
        return [
            p
            for p, s in zip(projects, states, strict=True)
            if (s.guild, s.role, s.holds) == (guild, role, True)
        ]

    # ---- acknowledgements -----------------------------------------------------------------

    async def _ack(self, vendor_id: str, source: str, entry_ids: list[str]) -> list[Any]:
        """XACK + XDEL of the entries still pending (store/lua/role_ack.lua); a project
        stream for its owner only. Returns [entry id, fields] per acknowledged entry."""
        if source == REVOKE:
            keys = [keyspace.vendor(vendor_id), keyspace.role_revokes(vendor_id)]
        else:
            keys = [keyspace.project(source), keyspace.role_changes(source)]
        acked: list[Any] = await self.core.script(
            self.core.scripts.role_ack,
            keys,
            [vendor_id, "revoke" if source == REVOKE else "project", *entry_ids],
        )
        return acked

    async def ack(self, vendor_id: str, change_ids: list[str]) -> int:
        """Acknowledges the vendor's changes (applied: Discord answered); a change_id that is
        not one (malformed, another vendor's, acknowledged already) is ignored. Returns how
        many were acknowledged. A change whose grant no longer matches the user's keys queues
        the user again, so the last call sent to Discord always matches the keys."""
        by_source: dict[str, dict[str, bool]] = {}
        for value in change_ids:
            parsed = parse_change_id(value)
            if parsed is None:
                continue
            source, entry_id, grant = parsed
            if source != REVOKE and not _is_uuid(source):
                continue
            by_source.setdefault(source, {})[entry_id] = grant
        results = await asyncio.gather(
            *(self._ack(vendor_id, s, list(ids)) for s, ids in by_source.items())
        )
        granting: dict[tuple[str, str], list[str]] = {}  # for this acknowledgement
        for source, acked in zip(by_source, results, strict=True):
            for entry_id, flat in acked:
                granted = by_source[source][str(entry_id)]
                revoked = pairs(flat)
                if source == REVOKE and not granted:
                    which = (revoked.get("guild", ""), revoked.get("role", ""))
                    if which not in granting:
                        granting[which] = await self.granting(vendor_id, *which)
        await asyncio.gather(
            *(
                self._recheck(source, pairs(flat), by_source[source][str(eid)], granting)
                for source, acked in zip(by_source, results, strict=True)
                for eid, flat in acked
            )
        )
        return sum(len(acked) for acked in results)

    async def _recheck(
        self,
        source: str,
        fields: dict[str, str],
        granted: bool,
        granting: dict[tuple[str, str], list[str]],
    ) -> None:
        user = fields.get("discord_id", "")
        if not user or user == EVERYONE:
            return
        if source == REVOKE:
            if granted:
                return  # kept: the project that grants it follows the user in its own stream
            guild, role = fields.get("guild", ""), fields.get("role", "")
            for pid in await self._holding(granting.get((guild, role), []), guild, role, user):
                await self._queue(pid, "RECHECK", "", "", [user])
            return
        if fields.get("old_guild") or fields.get("old_role"):
            return
        state = await self.state(source, user)
        if state.guild and state.role and state.holds != granted:
            await self._queue(source, "RECHECK", "", "", [user])

    # ---- a user's state, the sweep ---------------------------------------------------------

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

    async def pending(self, project_id: str | None = None, vendor_id: str | None = None) -> int:
        """Entries handed out but not yet acknowledged, of a project's stream or (``vendor_id``)
        of the vendor's revoke stream (tests, operations)."""
        if vendor_id is not None:
            stream = keyspace.role_revokes(vendor_id)
        else:
            stream = keyspace.role_changes(str(project_id))
        try:
            reply = await self.core.call("XPENDING", stream, GROUP)
        except ResponseError as exc:
            if "NOGROUP" in str(exc) or "no such key" in str(exc):
                return 0
            raise
        return int(reply[0] if isinstance(reply, list | tuple) else reply["pending"])

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


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None
