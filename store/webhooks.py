"""Durable webhook notifications: the store side.

Events vendors are notified of are appended, in the same script as what caused them, to the
project's notification stream while the project has a webhook (store/lua/_common.lua). A
consumer group ``webhooks`` on each such stream hands entries to deliverers on any instance;
an entry is deleted only after its delivery succeeded, and an entry whose deliverer failed or
died stays pending until another claims it after a backoff. Projects with a webhook are kept
in a registry set so deliverers know which streams to read.
"""

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from redis.exceptions import ResponseError

from store import keyspace
from store.core import Core
from store.models import pairs

GROUP = "webhooks"
# Pending entries ``claim`` looks at for one whose backoff has passed (bounded work per call,
# whatever ``count``; entries past the window are seen once earlier ones are done).
PENDING_SCAN = 100


class Notification(NamedTuple):
    project_id: str
    entry_id: str
    deliveries: int  # attempts so far, this one included
    fields: dict[str, str]


class Webhooks:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def sync(self, project_id: str, webhook_url: str | None, notify: bool) -> None:
        """Registers (with its consumer group) or unregisters a project after a change."""
        if webhook_url and notify:
            try:
                await self.core.call(
                    "XGROUP", "CREATE", keyspace.notify(project_id), GROUP, "$", "MKSTREAM"
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            await self.core.call("SADD", keyspace.webhook_projects(), project_id)
        else:
            await self.core.call("SREM", keyspace.webhook_projects(), project_id)

    async def send_test(self, vendor_id: str, project_id: str) -> None:
        """Queues a ``TEST`` notification for the project's webhook, the durable way real
        events go (lua/webhook_test.lua); NoWebhook when it has none or notifications are off."""
        await self.core.script(
            self.core.scripts.webhook_test,
            [keyspace.project(project_id), *keyspace.event_streams(project_id)],
            [vendor_id],
            durable=True,
        )

    async def projects(self) -> list[str]:
        return sorted(await self.core.call("SMEMBERS", keyspace.webhook_projects()))

    async def project_batches(self) -> AsyncIterator[list[str]]:
        """The projects with a webhook, in SSCAN batches (bounded work per step)."""
        async for ids in self.core.members(keyspace.webhook_projects()):
            yield ids

    async def target(self, project_id: str) -> str | None:
        """The project's webhook URL if notifications are on now, else None."""
        url, notify = await self.core.call(
            "HMGET", keyspace.project(project_id), "webhook_url", "notify_enabled"
        )
        return url if url and notify != "0" else None

    async def claim(
        self, project_id: str, consumer: str, count: int, backoff: float, max_backoff: float
    ) -> list[Notification]:
        """At most ``count`` entries to deliver now: pending ones whose backoff has passed (a
        failed attempt, or a deliverer that died), then new ones. Each entry claimed counts as
        a delivery attempt, so the deliverer claims only what it is about to send."""
        stream = keyspace.notify(project_id)
        out: list[Notification] = []
        try:
            pending: list[Any] = await self.core.call(
                "XPENDING", stream, GROUP, "-", "+", max(count, PENDING_SCAN)
            )
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                return []
            raise
        due: list[str] = []
        for entry_id, _owner, idle_ms, deliveries in pending:
            wait = min(max_backoff, backoff * 2 ** (int(deliveries) - 1))
            if int(idle_ms) >= wait * 1000 and len(due) < count:
                due.append(entry_id)
        if due:
            min_idle = int(backoff * 1000)
            claimed = await self.core.call("XCLAIM", stream, GROUP, consumer, min_idle, *due)
            # This attempt is one more than the deliveries XPENDING counted before the claim.
            attempt = {e[0]: int(e[3]) + 1 for e in pending}
            out += [
                Notification(project_id, eid, attempt[eid], pairs(f))
                for eid, f in claimed
                if f is not None
            ]
        if len(out) >= count:
            return out
        fresh = await self.core.call(
            "XREADGROUP",
            "GROUP",
            GROUP,
            consumer,
            "COUNT",
            count - len(out),
            "STREAMS",
            stream,
            ">",
        )
        for _name, entries in _stream_entries(fresh):
            out += [Notification(project_id, eid, 1, pairs(f)) for eid, f in entries]
        return out

    async def done(self, n: Notification) -> None:
        """Delivered (or given up on): acknowledged and deleted from the stream."""
        stream = keyspace.notify(n.project_id)
        await self.core.call("XACK", stream, GROUP, n.entry_id)
        await self.core.call("XDEL", stream, n.entry_id)


def _stream_entries(reply: Any) -> list[tuple[str, list[Any]]]:
    """XREADGROUP's reply as [(stream, entries)]: a list in RESP2, a map in RESP3/fakeredis."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(reply.items())
    return [(name, entries) for name, entries in reply]
