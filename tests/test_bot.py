"""The Discord bot: its API client against a live server, and each command's callback with a
fake interaction (no Discord network)."""

import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from service.bot import (
    PANEL_TEXT,
    BotConfigError,
    Commands,
    PanelView,
    RedeemModal,
    _duration,
    build_bot,
    role_sync_from_env,
)
from service.botclient import ApiError, Leaf7Client
from tests.support.api import Api, Clock, execute, setup_key

USER = 80351110224678912


class FakeResponse:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bool]] = []
        self.modals: list[discord.ui.Modal] = []

    async def send_message(self, content: str, *, ephemeral: bool = False) -> None:
        self.sent.append((content, ephemeral))

    async def send_modal(self, modal: discord.ui.Modal) -> None:
        self.modals.append(modal)


class FakeChannel:
    def __init__(self, error: Exception | None = None) -> None:
        self.posted: list[tuple[str, discord.ui.View]] = []
        self.error = error

    async def send(self, content: str, *, view: discord.ui.View) -> None:
        if self.error is not None:
            raise self.error
        self.posted.append((content, view))


class FakeInteraction:
    def __init__(
        self,
        user_id: int = USER,
        permissions: discord.Permissions | None = None,
        channel: FakeChannel | None = None,
    ) -> None:
        self.user = SimpleNamespace(id=user_id)
        self.response = FakeResponse()
        self.permissions = permissions or discord.Permissions.none()
        self.channel = channel

    @property
    def reply(self) -> str:
        [(text, ephemeral)] = self.response.sent
        assert ephemeral, "every reply is ephemeral"
        return text


def base_url(api: Api) -> str:
    return str(api.client.make_url("/")).rstrip("/")


async def bot_for(api: Api, pid: str, clock: Clock) -> tuple[Commands, Leaf7Client]:
    client = Leaf7Client(base_url(api), api.api_key, pid)
    return Commands(client, clock), client


async def test_client_against_live_server(api: Api) -> None:
    pid, kid = await setup_key(api, key_days=3)
    async with Leaf7Client(base_url(api), api.api_key, pid) as client:
        active = await client.redeem(kid, str(USER))
        assert active.key_id == kid and active.discord_id == str(USER)
        with pytest.raises(ApiError) as err:
            await client.redeem(kid, str(USER))
        assert (err.value.status, err.value.detail) == (400, "Key already redeemed")
        with pytest.raises(ApiError) as err:
            await client.redeem("doesnotexist", str(USER))
        assert (err.value.status, err.value.detail) == (404, "Key not found")
        [mine] = await client.user_keys(str(USER))
        assert mine.key_id == kid and mine.hwid is None
        assert await client.reset_hwid(str(USER)) == 0
        await execute(api, pid, kid, hwid="pc")
        assert await client.reset_hwid(str(USER)) == 1
        await execute(api, pid, kid, hwid="pc2")
        with pytest.raises(ApiError) as err:
            await client.reset_hwid(str(USER))
        # (A second may tick between the reset and this check.)
        assert err.value.status == 429 and err.value.retry_after in (86399, 86400)
        line = client.loader_line(kid)
        assert line.startswith(f'script_key = "{kid}"\nloadstring(game:HttpGet("')
        resp = await api.client.get(f"/api/loader/{pid}/loader.lua")
        assert resp.status == 200 and client.loader_url().endswith(f"/api/loader/{pid}/loader.lua")
    bad = Leaf7Client(base_url(api), "wrong-key", pid)
    with pytest.raises(ApiError) as err:
        await bad.user_keys(str(USER))
    assert (err.value.status, err.value.detail) == (401, "Not authenticated")
    await bad.close()


async def test_client_unreachable_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with Leaf7Client(f"http://127.0.0.1:{port}", "k", "p", timeout=2) as client:
        with pytest.raises(ApiError) as err:
            await client.user_keys("1")
    assert err.value.status == 503
    assert err.value.detail == "The key server is unreachable; try again later"


async def reply(command: Callable[..., Awaitable[None]], *args: Any) -> str:
    """What a command answers the user (its one ephemeral message)."""
    i = FakeInteraction()
    await command(i, *args)
    return i.reply


async def test_commands(api: Api, clock: Clock) -> None:
    pid, kid = await setup_key(api, key_days=1)
    commands, client = await bot_for(api, pid, clock)
    try:
        text = await reply(commands.mykey)
        assert text == "You have no key for this script. Redeem one with /redeem."
        assert "no usable key" in await reply(commands.script)
        assert await reply(commands.redeem, "  nope  ") == "Key not found"
        text = await reply(commands.redeem, f" {kid} ")
        assert text.startswith(f"Key redeemed: `{kid[:6]}…` expires ")
        assert "(1d left)" in text and "no HWID bound yet" in text
        assert await reply(commands.redeem, kid) == "Key already redeemed"
        text = await reply(commands.resethwid)
        assert text == "No HWID is bound to your key yet: nothing to reset."
        await execute(api, pid, kid, hwid="pc-1")
        assert "1 executions; HWID bound" in await reply(commands.mykey)
        text = await reply(commands.resethwid)
        assert text == "Your HWID was reset. Run the script on your new device."
        await execute(api, pid, kid, hwid="pc-2")
        assert await reply(commands.resethwid) == "HWID reset is on cooldown: try again in 1d."
        text = await reply(commands.script)
        assert f'script_key = "{kid}"' in text and "loader.lua" in text
        # Someone else: their own (empty) view.
        i = FakeInteraction(user_id=1)
        await commands.resethwid(i)
        assert i.reply == "You have no key for this script. Redeem one with /redeem."
        # Banned: no loader, no reset.
        await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
        assert "no usable key" in await reply(commands.script)
        clock.advance(86400)
        assert await reply(commands.resethwid) == "Key is banned"
        text = await reply(commands.mykey)
        assert "**banned**" in text and "expired on" in text
    finally:
        await client.close()


def test_duration() -> None:
    assert _duration(0) == "0m"
    assert _duration(1) == "1m"
    assert _duration(3600) == "1h"
    assert _duration(86400 + 3 * 3600 + 61) == "1d 3h 2m"


async def test_bot_registers_the_slash_commands() -> None:
    client = Leaf7Client("http://127.0.0.1:1", "k", "p")
    try:
        bot, tree = build_bot(client)
        assert sorted(c.name for c in tree.get_commands()) == [
            "mykey",
            "panel",
            "redeem",
            "resethwid",
            "script",
        ]
        panel = tree.get_command("panel")
        assert isinstance(panel, discord.app_commands.Command)
        assert panel.default_permissions == discord.Permissions(manage_guild=True)
        assert panel.guild_only
        # The panel's buttons survive a restart: a persistent view, registered at start.
        [view] = bot.persistent_views
        assert isinstance(view, PanelView) and view.timeout is None
        assert view.is_persistent()
        assert [getattr(c, "custom_id", None) for c in view.children] == [
            "leaf7:panel:redeem",
            "leaf7:panel:script",
            "leaf7:panel:resethwid",
            "leaf7:panel:keyinfo",
        ]
        await bot.close()
    finally:
        await client.close()


def test_bot_command_needs_configuration(tmp_path: Path) -> None:
    leaf7 = Path(sys.executable).parent / "leaf7"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([str(leaf7), "bot"], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "DISCORD_TOKEN" in proc.stderr and "LEAF7_PROJECT_ID" in proc.stderr


def test_server_never_imports_discord() -> None:
    code = (
        "import sys, service.app, service.cli, handlers.loader; "
        "assert 'discord' not in sys.modules, 'server imported discord'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def button(view: PanelView, custom_id: str) -> "discord.ui.Button[PanelView]":
    [found] = [
        c for c in view.children if isinstance(c, discord.ui.Button) and c.custom_id == custom_id
    ]
    return found


async def click(view: PanelView, custom_id: str, user_id: int = USER) -> FakeInteraction:
    i = FakeInteraction(user_id)
    await button(view, custom_id).callback(i)  # type: ignore[arg-type]
    return i


async def test_panel_buttons(api: Api, clock: Clock) -> None:
    pid, kid = await setup_key(api, key_days=1)
    commands, client = await bot_for(api, pid, clock)
    try:
        view = PanelView(commands)
        i = await click(view, "leaf7:panel:keyinfo")
        assert i.reply == "You have no key for this script. Redeem one with /redeem."
        i = await click(view, "leaf7:panel:script")
        assert "no usable key" in i.reply
        # Redeem: a modal asks for the key; submitting it redeems for the clicking user.
        i = await click(view, "leaf7:panel:redeem")
        [modal] = i.response.modals
        assert isinstance(modal, RedeemModal) and not i.response.sent
        modal.key._value = "  nope "  # what Discord fills in from the submitted form
        i = FakeInteraction()
        await modal.on_submit(i)  # type: ignore[arg-type]
        assert i.reply == "Key not found"
        modal.key._value = kid
        i = FakeInteraction()
        await modal.on_submit(i)  # type: ignore[arg-type]
        assert i.reply.startswith(f"Key redeemed: `{kid[:6]}…` expires ")
        [active] = await api.call("GET", f"/api/vendor/users/{USER}/keys?project_id={pid}")
        assert active["key_id"] == kid
        i = await click(view, "leaf7:panel:script")
        assert f'script_key = "{kid}"' in i.reply and "loader.lua" in i.reply
        i = await click(view, "leaf7:panel:resethwid")
        assert i.reply == "No HWID is bound to your key yet: nothing to reset."
        await execute(api, pid, kid, hwid="pc-1")
        i = await click(view, "leaf7:panel:keyinfo")
        assert "(1d left)" in i.reply and "1 executions; HWID bound" in i.reply
        i = await click(view, "leaf7:panel:resethwid")
        assert i.reply == "Your HWID was reset. Run the script on your new device."
        await execute(api, pid, kid, hwid="pc-2")
        clock.advance(3600)
        i = await click(view, "leaf7:panel:resethwid")
        assert i.reply == "HWID reset is on cooldown: try again in 23h."
        i = await click(view, "leaf7:panel:keyinfo", user_id=1)
        assert i.reply == "You have no key for this script. Redeem one with /redeem."
    finally:
        await client.close()


async def test_panel_command(api: Api, clock: Clock) -> None:
    pid, _ = await setup_key(api)
    commands, client = await bot_for(api, pid, clock)
    try:
        channel = FakeChannel()
        i = FakeInteraction(channel=channel)
        await commands.panel(i)  # type: ignore[arg-type]
        assert i.reply == "Posting the panel needs the Manage Server permission."
        assert not channel.posted
        for perms in (discord.Permissions(manage_guild=True), discord.Permissions.all()):
            i = FakeInteraction(permissions=perms, channel=channel)
            await commands.panel(i)  # type: ignore[arg-type]
            assert i.reply == "Panel posted."
        assert [text for text, _ in channel.posted] == [PANEL_TEXT, PANEL_TEXT]
        assert all(isinstance(v, PanelView) and v.timeout is None for _, v in channel.posted)
        refused = discord.Forbidden(
            SimpleNamespace(status=403, reason="Forbidden"),  # type: ignore[arg-type]
            {"code": 50013, "message": "Missing Permissions"},
        )
        i = FakeInteraction(permissions=discord.Permissions(manage_guild=True))
        i.channel = FakeChannel(refused)
        await commands.panel(i)  # type: ignore[arg-type]
        assert i.reply == "Could not post the panel here: Missing Permissions"
    finally:
        await client.close()


def test_role_sync_configuration() -> None:
    """On by default, with nothing but the bot's API key: no REDIS_URL (the changes come from
    the HTTP API)."""
    got = role_sync_from_env({})
    assert got is not None
    base, config = got
    assert base == "https://discord.com/api/v10"
    assert (config.wait, config.batch) == (30.0, 50)
    for off in ("0", "false", "no", "off"):
        assert role_sync_from_env({"LEAF7_ROLE_SYNC": off}) is None
    got = role_sync_from_env({"DISCORD_API_BASE": "http://127.0.0.1:9/api/v10"})
    assert got is not None and got[0] == "http://127.0.0.1:9/api/v10"
    with pytest.raises(BotConfigError, match="DISCORD_API_BASE"):
        role_sync_from_env({"DISCORD_API_BASE": "discord.com"})
