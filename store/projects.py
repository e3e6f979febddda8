"""Projects: settings, the hosted source, and deleting a project with everything in it.

Ownership is checked inside the script that reads or writes, so a vendor can never act on a
project it does not own (it simply looks missing).
"""

import asyncio
import uuid

from store import keyspace
from store.blacklist import Blacklist
from store.core import Core, flatten, raise_first
from store.errors import ProjectNotFound
from store.models import Project, pairs, project_from_hash
from store.vendors import Vendors
from store.webhooks import Webhooks


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
        h = {
            **fields,
            "vendor_id": vendor_id,
            "is_active": "1",
            "version": "0.0.0",
            "created_at": str(self.core.now()),
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
        flat = await self.core.script(
            self.core.scripts.update_project,
            [keyspace.project(project_id), *keyspace.event_streams(project_id)],
            [vendor_id, *flatten(changes.items())],
            durable=True,
        )
        project = project_from_hash(project_id, pairs(flat))
        if {"webhook_url", "notify_enabled"} & changes.keys():
            await self.webhooks.sync(project_id, project.webhook_url, project.notify_enabled)
        return project

    async def set_source(
        self, vendor_id: str, project_id: str, source: str, version: str | None, macros: str
    ) -> Project:
        flat = await self.core.script(
            self.core.scripts.set_source,
            [
                keyspace.project(project_id),
                keyspace.project_source(project_id),
                *keyspace.event_streams(project_id),
            ],
            [vendor_id, source, version or "", macros],
            durable=True,
        )
        return project_from_hash(project_id, pairs(flat))

    async def delete(self, vendor_id: str, project_id: str) -> None:
        hour = self.core.now() // 3600
        hourly = [keyspace.hourly_executions(project_id, hour - i) for i in range(14)]
        key_ids: list[str] = await self.core.script(
            self.core.scripts.delete_project,
            keyspace.project_keys(project_id) + hourly,
            [vendor_id, keyspace.key_prefix(project_id), keyspace.discord_prefix(project_id)],
            durable=True,
        )
        # The refs live in other slots: one batch per node, after the data is gone (a ref
        # that outlives its key resolves to a project that no longer owns it: 404).
        call = self.core.call
        await asyncio.gather(
            call("SREM", keyspace.vendor_projects(vendor_id), project_id),
            self.webhooks.sync(project_id, None, False),
            *(call("DEL", keyspace.key_ref(key_id)) for key_id in key_ids),
        )

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
