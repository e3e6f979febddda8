"""Webhook delivery against a local aiohttp receiver: durable, retried with backoff,
at least once, from any instance. The receiver listens on 127.0.0.1, which only an explicit
LEAF7_WEBHOOK_ALLOW lets webhooks reach (tests/test_webhook_targets.py: not without it)."""

import asyncio
import dataclasses
import ipaddress
from typing import Any

import pytest
from aiohttp import web

from service.config import Settings
from service.webhooks import Deliverer, DelivererConfig
from store import keyspace
from tests.support.api import Api, execute

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
FAST = DelivererConfig(
    poll=0.05, backoff=0.2, max_backoff=1.0, max_attempts=4, timeout=2, allow=LOOPBACK
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """LEAF7_WEBHOOK_ALLOW=127.0.0.0/8: vendors may save the local receiver's URL."""
    return dataclasses.replace(settings, webhook_allow=LOOPBACK)


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.attempts = 0
        self.received: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return web.Response(status=500)
        self.received.append(await request.json())
        return web.Response(status=204)

    @property
    def titles(self) -> list[str]:
        return [r["embeds"][0]["title"] for r in self.received]


@pytest.fixture
async def receiver_url(aiohttp_server: Any) -> Any:
    async def start(receiver: Receiver) -> str:
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        server = await aiohttp_server(app)
        return str(server.make_url("/hook"))

    return start


async def redeemed_for(api: Api, webhook_url: str) -> str:
    """A project whose webhook is ``webhook_url``, with one key redeemed (one REDEEM event to
    deliver): its project id."""
    project = await api.project(webhook_url=webhook_url)
    pid: str = project["project_id"]
    [key] = await api.keys(pid)
    await api.redeem(key["key_id"])
    return pid


async def test_events_are_delivered_as_embeds(api: Api, receiver_url: Any) -> None:
    receiver = Receiver()
    url = await receiver_url(receiver)
    project = await api.project(webhook_url=url)
    pid = project["project_id"]
    [key] = await api.keys(pid)
    kid = key["key_id"]
    await api.redeem(kid, discord_id="42")
    await execute(api, pid, kid, hwid="pc-1")  # executions themselves are not notified
    await execute(api, pid, kid, hwid="pc-2")  # KEY_HWID_LOCKED attempt
    await api.call("POST", f"/api/vendor/keys/active/{kid}/reset_hwid")
    await execute(api, pid, kid, hwid="pc-3")
    await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
    await api.call("POST", f"/api/vendor/keys/active/{kid}/unban")
    await api.call("POST", "/api/vendor/blacklist", {"hwid": "evil"})
    await execute(api, pid, kid, hwid="evil")
    deliverer = Deliverer(api.store, FAST)
    try:
        assert await deliverer.run_once() == 6
    finally:
        await deliverer.close()
    assert receiver.titles == [
        "Key redeemed",
        "Execution refused",
        "HWID reset",
        "Key banned",
        "Key unbanned",
        "Execution refused",
    ]
    locked = receiver.received[1]["embeds"][0]
    values = {f["name"]: f["value"] for f in locked["fields"]}
    assert values["HWID"] == "`pc-2`" and values["Bound HWID"] == "`pc-1`"
    assert values["Project"] == f"`{pid}`" and values["Key"] == f"`{kid}`"
    reset = {f["name"]: f["value"] for f in receiver.received[2]["embeds"][0]["fields"]}
    assert reset["Previous HWID"] == "`pc-1`"  # so vendors can spot key sharing
    assert receiver.received[3]["embeds"][0]["color"] == 0xE74C3C
    assert await api.store.redis.xlen(keyspace.notify(pid)) == 0
    assert (await api.store.redis.xpending(keyspace.notify(pid), "webhooks"))["pending"] == 0


async def test_failing_receiver_is_retried_with_backoff(api: Api, receiver_url: Any) -> None:
    receiver = Receiver(fail_first=2)
    pid = await redeemed_for(api, await receiver_url(receiver))
    deliverer = Deliverer(api.store, FAST)
    try:
        assert await deliverer.run_once() == 0  # attempt 1: 500
        assert await deliverer.run_once() == 0  # backoff not over: no attempt
        assert receiver.attempts == 1
        await asyncio.sleep(0.25)
        assert await deliverer.run_once() == 0  # attempt 2: 500
        await asyncio.sleep(0.25)
        assert await deliverer.run_once() == 0  # second backoff is 0.4 s
        await asyncio.sleep(0.2)
        assert await deliverer.run_once() == 1  # attempt 3: delivered
        assert await deliverer.run_once() == 0
    finally:
        await deliverer.close()
    assert receiver.attempts == 3 and receiver.titles == ["Key redeemed"]
    assert await api.store.redis.xlen(keyspace.notify(pid)) == 0


async def test_a_crashed_deliverer_loses_nothing(api: Api, receiver_url: Any) -> None:
    receiver = Receiver()
    pid = await redeemed_for(api, await receiver_url(receiver))
    # Instance A takes the entry and dies before delivering it.
    taken = await api.store.webhooks.claim(pid, "instance-a", 10, FAST.backoff, 1.0)
    assert [n.fields["kind"] for n in taken] == ["REDEEM"]
    other = Deliverer(api.store, FAST)  # instance B
    try:
        assert await other.run_once() == 0  # still inside A's grace period
        await asyncio.sleep(0.25)
        assert await other.run_once() == 1
    finally:
        await other.close()
    assert receiver.titles == ["Key redeemed"]


async def test_gives_up_after_max_attempts(api: Api, receiver_url: Any) -> None:
    receiver = Receiver(fail_first=100)
    pid = await redeemed_for(api, await receiver_url(receiver))
    config = DelivererConfig(
        poll=0.05, backoff=0.05, max_backoff=0.05, max_attempts=3, allow=LOOPBACK
    )
    deliverer = Deliverer(api.store, config)
    try:
        for _ in range(3):
            await deliverer.run_once()
            await asyncio.sleep(0.08)
    finally:
        await deliverer.close()
    assert receiver.attempts == 3
    assert await api.store.redis.xlen(keyspace.notify(pid)) == 0


async def test_no_webhook_or_notifications_off(api: Api, receiver_url: Any) -> None:
    receiver = Receiver()
    url = await receiver_url(receiver)
    quiet = await api.project(webhook_url=url, notify_enabled=False)
    plain = await api.project()
    for p in (quiet, plain):
        [key] = await api.keys(p["project_id"])
        await api.redeem(key["key_id"])
        assert await api.store.redis.xlen(keyspace.notify(p["project_id"])) == 0
    assert await api.store.webhooks.projects() == []
    # Turning notifications on registers the project; later events are delivered.
    pid = quiet["project_id"]
    await api.call("PATCH", f"/api/vendor/projects/{pid}", {"notify_enabled": True})
    assert await api.store.webhooks.projects() == [pid]
    [key] = await api.keys(pid)
    await api.redeem(key["key_id"])
    deliverer = Deliverer(api.store, FAST)
    try:
        assert await deliverer.run_once() == 1
        # Webhook removed with an event queued: dropped, never sent anywhere.
        [key] = await api.keys(pid)
        await api.redeem(key["key_id"])
        await api.call("PATCH", f"/api/vendor/projects/{pid}", {"webhook_url": None})
        assert await api.store.webhooks.projects() == []
    finally:
        await deliverer.close()
    assert receiver.titles == ["Key redeemed"]
    await api.call("DELETE", f"/api/vendor/projects/{pid}")
