"""Projects: settings, the hosted source, and deleting a project with everything in it.

Ownership is checked inside the script that reads or writes, so a vendor can never act on a
project it does not own (it simply looks missing).
"""

import asyncio
import secrets
import uuid

from store import keyrefs, keyspace
from store.blacklist import Blacklist
from store.core import Core, flatten, raise_first
from store.errors import ProjectNotFound
from store.models import (
    SIGNING_FIELDS,
    Project,
    Signing,
    pairs,
    project_from_hash,
    signing_from_fields,
)
from store.vendors import Vendors
from store.webhooks import Webhooks

# Keys deleted per script call when a project is deleted (and users queued per write on the
# vendor's revoke stream of Discord roles).
DELETE_BATCH = 1000


class Projects:
    def __init__(
        self, core: Core, vendors: Vendors, blacklist: Blacklist, webhooks: Webhooks
    ) -> None:
        self.core = core
        self.vendors = vendors
        self.blacklist = blacklist
        self.webhooks = webhooks

    async def create(self, vendor_id: str, fields: dict[str, str]) -> Project:
        project_id = str(uuid.uuid4())
        now = str(self.core.now())
        h = {
            **fields,
            "vendor_id": vendor_id,
            "is_active": "1",
            "version": "0.0.0",
            "created_at": now,
            # Its verdict-signing key id from the start (used once signed_verdicts is on).
            "sign_kid": new_kid(),
            "sign_created": now,
        }
        # Both writes go out in one batch (durable: with WAITAOF on one connection). A listing
        # that meets the id before its hash, or a hash whose owner differs, skips it.
        results = await self.core.write(
            [
                ("HSET", keyspace.project(project_id), *flatten(h.items())),
                ("SADD", keyspace.vendor_projects(vendor_id), project_id),
            ]
        )
        raise_first(results)
        await self.blacklist.mirror_into(vendor_id, project_id)
        project = project_from_hash(project_id, h)
        await self.webhooks.sync(project_id, project.webhook_url, project.notify_enabled)
        return project

    async def get(self, vendor_id: str, project_id: str) -> Project:
        h = pairs(await self.core.call("HGETALL", keyspace.project(project_id)))
        if not h or h.get("vendor_id") != vendor_id:
            raise ProjectNotFound
        return project_from_hash(project_id, h)

    async def exists(self, project_id: str) -> bool:
        return bool(await self.core.call("EXISTS", keyspace.project(project_id)))

    async def update(self, vendor_id: str, project_id: str, changes: dict[str, str]) -> Project:
        if changes.get("signed_verdicts") == "1":
            # A project made before signed verdicts has no key id yet: made first, so no
            # check ever sees signing on without one.
            await self.signing_key(vendor_id, project_id)
        flat = await self.core.script(
            self.core.scripts.update_project,
            [keyspace.project(project_id), *keyspace.synced_streams(project_id)],
            [vendor_id, *flatten(changes.items())],
            durable=True,
        )
        project = project_from_hash(project_id, pairs(flat))
        if {"webhook_url", "notify_enabled"} & changes.keys():
            await self.webhooks.sync(project_id, project.webhook_url, project.notify_enabled)
        return project

    async def signing(self, project_id: str) -> Signing | None:
        """A project's signed-verdict state, None when it does not exist (the loader's read:
        no owner check)."""
        key = keyspace.project(project_id)
        flat = await self.core.call("HMGET", key, "vendor_id", *SIGNING_FIELDS)
        if flat[0] is None:
            return None
        return signing_from_fields(flat[1:], self.core.now())

    async def signing_key(
        self, vendor_id: str, project_id: str, *, rotate: bool = False, grace: int = 0
    ) -> Signing:
        """The vendor's project's signing state, with a key id made first when it has none;
        ``rotate``: a new key id, the previous one accepted ``grace`` seconds more."""
        now = self.core.now()
        values = await self.core.script(
            self.core.scripts.signing_key,
            [keyspace.project(project_id), *keyspace.event_streams(project_id)],
            [vendor_id, "rotate" if rotate else "ensure", new_kid(), now, now + grace],
            durable=True,
        )
        return signing_from_fields(values, now)

    async def set_source(
        self,
        vendor_id: str,
        project_id: str,
        source: str,
        version: str | None,
        macros: str,
        marks: str | None = None,
        job: str = "",
    ) -> Project | None:
        """Stores the source with its watermark plan (``marks``; None: not made). None when
        the project marks its copies and ``marks`` is None: nothing was written, make the
        plan and call again. ``job``: the source is the output of that obfuscation job
        (``StaleJob`` when it is no longer the project's current one); without, the source is
        the upload itself (``ObfuscationNeeded`` when the project obfuscates)."""
        flat = await self.core.script(
            self.core.scripts.set_source,
            [
                keyspace.project(project_id),
                keyspace.project_source(project_id),
                keyspace.project_marks(project_id),
                keyspace.project_original(project_id),
                *keyspace.event_streams(project_id),
            ],
            [
                vendor_id,
                source,
                version or "",
                macros,
                marks or "",
                "0" if marks is None else "1",
                job,
                self.core.now(),
            ],
            durable=True,
        )
        if flat == ["MARKS_NEEDED"]:
            return None
        if flat == ["OBFUSCATE"]:
            raise ObfuscationNeeded
        if flat == ["STALE"]:
            raise StaleJob
        return project_from_hash(project_id, pairs(flat))

    async def obfuscation_job(
        self, vendor_id: str, project_id: str, op: str, job: str, *args: str | int
    ) -> Project | None:
        """One step of an obfuscation job (``lua/obfuscation_job.lua``): ``start`` (args: the
        uploaded source, the job's deadline; None when the project does not obfuscate),
        ``run``, ``fail`` (args: the reason). None too when the job is no longer current."""
        flat = await self.core.script(
            self.core.scripts.obfuscation_job,
            [
                keyspace.project(project_id),
                keyspace.project_original(project_id),
                *keyspace.event_streams(project_id),
            ],
            [vendor_id, op, job, self.core.now(), *args],
            durable=True,
        )
        if flat in (["OFF"], ["STALE"]):
            return None
        return project_from_hash(project_id, pairs(flat))

    async def original_source(self, vendor_id: str, project_id: str) -> str:
        """What the vendor uploaded last: the obfuscator's input while obfuscation is on, else
        the hosted source itself."""
        await self.get(vendor_id, project_id)
        original, hosted = await asyncio.gather(
            self.core.call("GET", keyspace.project_original(project_id)),
            self.core.call("GET", keyspace.project_source(project_id)),
        )
        return str(original if original is not None else hosted or "")

    async def mark_copies(
        self, vendor_id: str, project_id: str, source: str, marks: str
    ) -> Project | None:
        """Turns the project's watermark on with ``marks``, the plan of ``source``; None (and
        nothing written) when the stored source is no longer ``source``."""
        flat = await self.core.script(
            self.core.scripts.set_marks,
            [
                keyspace.project(project_id),
                keyspace.project_source(project_id),
                keyspace.project_marks(project_id),
                *keyspace.event_streams(project_id),
            ],
            [vendor_id, source, marks],
            durable=True,
        )
        if flat == ["STALE"]:
            return None
        return project_from_hash(project_id, pairs(flat))

    async def leak_event(self, vendor_id: str, project_id: str, key_id: str, message: str) -> None:
        """The event of a leak traced to one of the project's keys."""
        await self.core.script(
            self.core.scripts.leak_event,
            [keyspace.project(project_id), *keyspace.event_streams(project_id)],
            [vendor_id, key_id, message],
        )

    async def key_ids(self, project_id: str, batch: int = 1000) -> list[str]:
        """Every key id of the project's active (redeemed) index: the keys a copy was ever
        served to (``SSCAN`` steps; no owner check, the caller owns the project)."""
        out: list[str] = []
        cursor = "0"
        while True:
            cursor, ids = await self.core.call(
                "SSCAN", keyspace.active_index(project_id), cursor, "COUNT", batch
            )
            out += ids
            if str(cursor) == "0":
                return out

    async def source(self, vendor_id: str, project_id: str) -> str:
        """The hosted source of the vendor's project ('' before the first upload)."""
        await self.get(vendor_id, project_id)
        found: str | None = await self.core.call("GET", keyspace.project_source(project_id))
        return found or ""

    async def delete(self, vendor_id: str, project_id: str) -> None:
        """Deletes the project and everything in it, in bounded steps.

        1. One script checks ownership and renames the project hash to its tombstone: from
           then on every API and loader call finds no project (404, PROJECT_NOT_FOUND), and
           the project leaves the vendor's index and the webhook registry.
        2. If it has a Discord role, every Discord user of the project is queued on the
           vendor's revoke stream (which outlives the project; store/roles.py), in writes of
           at most ``DELETE_BATCH``, before any key goes; the tombstone is then marked so a
           resumed delete does not queue them again.
        3. Its keys go in batches of at most ``DELETE_BATCH`` per script call (their refs,
           in other slots, right after each batch).
        4. Its fixed keys go last, the tombstone with them.

        A delete that stopped halfway (a crash, a lost connection) left the tombstone: what
        remains is unreachable (every script checks the project hash, which is gone), and
        deleting the project again resumes the work where it stopped. Refs of keys already
        deleted resolve to no project (404), as they always did."""
        tombstone = keyspace.project_tombstone(project_id)
        await self.core.script(
            self.core.scripts.delete_project,
            [keyspace.project(project_id), tombstone],
            [vendor_id],
            durable=True,
        )
        await asyncio.gather(
            self.core.call("SREM", keyspace.vendor_projects(vendor_id), project_id),
            self.webhooks.sync(project_id, None, False),
        )
        await self._queue_role_removals(vendor_id, project_id)
        batch_keys = [
            tombstone,
            keyspace.buyer_index(project_id),
            keyspace.active_index(project_id),
            keyspace.key_discords(project_id),
        ]
        batch_args = [
            vendor_id,
            keyspace.key_prefix(project_id),
            keyspace.discord_prefix(project_id),
            DELETE_BATCH,
        ]
        while True:
            key_ids: list[str] = await self.core.script(
                self.core.scripts.delete_project_keys, batch_keys, batch_args
            )
            if not key_ids:
                break
            # The refs live in other slots: one batch per node, after the data is gone (a
            # ref that outlives its key resolves to a project that no longer owns it: 404).
            await keyrefs.drop(self.core, vendor_id, project_id, key_ids)
        hour = self.core.now() // 3600
        hourly = [keyspace.hourly_executions(project_id, hour - i) for i in range(14)]
        # Executions by executor (kept 8 days) and forged-answer reports per day (100 days).
        hourly += [keyspace.hourly_executors(project_id, hour - i) for i in range(8 * 24 + 1)]
        day = hour // 24
        hourly += [keyspace.daily_reports(project_id, day - i) for i in range(101)]
        fixed = [k for k in keyspace.project_keys(project_id) if k != keyspace.project(project_id)]
        await self.core.script(
            self.core.scripts.delete_project_rest,
            [tombstone, *fixed, *hourly],
            [vendor_id],
        )  # (not durable: the rename above was; lost, it is redone by deleting again)

    async def _queue_role_removals(self, vendor_id: str, project_id: str) -> None:
        """Step 2 of ``delete``: the project's Discord users onto the vendor's revoke stream
        (only that vendor's role sync reads it: a project may name any guild). A crash midway
        leaves the tombstone unmarked: deleting again queues them all again (removing a role
        twice is harmless); nothing is deleted before they are queued."""
        tombstone = keyspace.project_tombstone(project_id)
        guild, role, queued = await self.core.call(
            "HMGET", tombstone, "discord_guild_id", "discord_role_id", "roles_revoked"
        )
        if not guild or not role or queued:
            return
        stream = keyspace.role_revokes(vendor_id)
        common = ("guild", guild, "role", role, "project_id", project_id)
        cursor = "0"
        while True:
            cursor, flat = await self.core.call(
                "HSCAN", keyspace.key_discords(project_id), cursor, "COUNT", DELETE_BATCH
            )
            # (A step may return more than COUNT: a compact hash comes back whole.)
            users = sorted(set(pairs(flat).values()))
            for at in range(0, len(users), DELETE_BATCH):
                raise_first(
                    await self.core.write(
                        [
                            ("XADD", stream, "*", *common, "discord_id", u)
                            for u in users[at : at + DELETE_BATCH]
                        ]
                    )
                )
            if str(cursor) == "0":
                break
        await self.core.call("HSET", tombstone, "roles_revoked", "1")

    # Last: within the class body, the name ``list`` is this method.
    async def list(self, vendor_id: str) -> list[Project]:
        ids = await self.vendors.project_ids(vendor_id)
        flats = await asyncio.gather(*(self.core.call("HGETALL", keyspace.project(p)) for p in ids))
        hashes = [pairs(flat) for flat in flats]
        return [
            project_from_hash(p, h)
            for p, h in zip(ids, hashes, strict=True)
            if h.get("vendor_id") == vendor_id
        ]


class ObfuscationNeeded(Exception):
    """A plain upload to a project that obfuscates: nothing was written (start a job)."""


class StaleJob(Exception):
    """An obfuscation job's output arrived after another upload or setting replaced the job."""


def new_kid() -> str:
    """A verdict-signing key id: 16 hex digits (random: never reused by a project)."""
    return secrets.token_hex(8)
