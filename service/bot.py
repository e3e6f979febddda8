"""The Discord bot (``leaf7 bot``): slash commands that call leaf7's HTTP API.

discord.py is an optional extra (``pip install leaf7[bot]``); the server never imports this
module. Every reply is ephemeral, and errors are the API's own messages.
"""

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import discord
from discord import app_commands

from service.botclient import ApiError, Leaf7Client
from service.discordtext import escape
from service.rolesync import DEFAULT_API_BASE, DiscordRest, RoleSync, RoleSyncConfig
from store.models import ActiveKey

log = logging.getLogger(f"leaf7.{__name__}")


def _duration(seconds: int) -> str:
    """``5h 3m``; rounded up to whole minutes, so a wait that remains never reads ``0m``."""
    if seconds <= 0:
        return "0m"
    days, rest = divmod(-(-seconds // 60), 1440)
    hours, minutes = divmod(rest, 60)
    return " ".join(f"{v}{unit}" for v, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if v)


def _seconds_left(key: ActiveKey, now: float) -> int | None:
    if key.expires_at is None:
        return None
    expires = datetime.fromisoformat(key.expires_at).replace(tzinfo=UTC).timestamp()
    return int(expires - now)


def describe(key: ActiveKey, now: float) -> str:
    left = _seconds_left(key, now)
    if left is None:
        expiry = "never expires (lifetime)"
    elif left <= 0:
        expiry = f"expired on {key.expires_at} UTC"
    else:
        expiry = f"expires {key.expires_at} UTC ({_duration(left)} left)"
    hwid = "HWID bound" if key.hwid else "no HWID bound yet"
    banned = " — **banned**" if key.banned else ""
    return f"`{key.key_id[:6]}…` {expiry}; {key.total_executions} executions; {hwid}{banned}"


NO_KEY = "You have no key for this script. Redeem one with /redeem."


class Commands:
    """The commands' logic, testable with any object that looks like an Interaction."""

    def __init__(self, client: Leaf7Client, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock

    @staticmethod
    async def _reply(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message(text, ephemeral=True)

    async def redeem(self, interaction: discord.Interaction, key: str) -> None:
        try:
            active = await self.client.redeem(key.strip(), str(interaction.user.id))
        except ApiError as exc:
            await self._reply(interaction, escape(exc.detail))
            return
        await self._reply(
            interaction,
            f"Key redeemed: {describe(active, self.clock())}.\nUse /script to get your loader.",
        )

    async def resethwid(self, interaction: discord.Interaction) -> None:
        try:
            count = await self.client.reset_hwid(str(interaction.user.id))
        except ApiError as exc:
            if exc.status == 429 and exc.retry_after is not None:
                text = f"{escape(exc.detail)}: try again in {_duration(exc.retry_after)}."
            elif exc.status == 404 and exc.detail == "Key not found":
                text = NO_KEY
            else:
                text = escape(exc.detail)
            await self._reply(interaction, text)
            return
        if count:
            await self._reply(
                interaction, "Your HWID was reset. Run the script on your new device."
            )
        else:
            await self._reply(interaction, "No HWID is bound to your key yet: nothing to reset.")

    async def _user_keys(self, interaction: discord.Interaction) -> list[ActiveKey] | None:
        """The user's keys; None when the API refused (the user is told why)."""
        try:
            return await self.client.user_keys(str(interaction.user.id))
        except ApiError as exc:
            await self._reply(interaction, escape(exc.detail))
            return None

    async def mykey(self, interaction: discord.Interaction) -> None:
        keys = await self._user_keys(interaction)
        if keys is None:
            return
        if not keys:
            await self._reply(
                interaction, "You have no key for this script. Redeem one with /redeem."
            )
            return
        now = self.clock()
        await self._reply(interaction, "\n".join(describe(k, now) for k in keys))

    async def script(self, interaction: discord.Interaction) -> None:
        keys = await self._user_keys(interaction)
        if keys is None:
            return
        now = self.clock()
        usable = [k for k in keys if not k.banned and ((_seconds_left(k, now) or 1) > 0)]
        if not usable:
            await self._reply(
                interaction, "You have no usable key for this script. Redeem one with /redeem."
            )
            return
        line = self.client.loader_line(usable[0].key_id)
        await self._reply(interaction, f"Paste this into your executor:\n```lua\n{line}\n```")

    async def panel(self, interaction: discord.Interaction) -> None:
        """Posts the buyer panel in the channel (guild admins: Manage Server)."""
        perms = getattr(interaction, "permissions", None)
        if perms is None or not (perms.administrator or perms.manage_guild):
            await self._reply(interaction, "Posting the panel needs the Manage Server permission.")
            return
        channel = interaction.channel
        if channel is None or not hasattr(channel, "send"):
            await self._reply(interaction, "The panel can only be posted in a text channel.")
            return
        try:
            await channel.send(PANEL_TEXT, view=PanelView(self))
        except discord.HTTPException as exc:
            await self._reply(
                interaction, f"Could not post the panel here: {escape(exc.text or str(exc))}"
            )
            return
        await self._reply(interaction, "Panel posted.")


PANEL_TEXT = (
    "**Your key**\nRedeem the key you bought, get your ready-to-paste script, reset your HWID"
    " or see your key's status. Only you see the answers."
)


class RedeemModal(discord.ui.Modal, title="Redeem your key"):
    """The panel's Redeem button opens this: one field, the key."""

    def __init__(self, commands: Commands) -> None:
        super().__init__(custom_id="leaf7:panel:redeem_modal")
        self.commands = commands
        self.key: discord.ui.TextInput[RedeemModal] = discord.ui.TextInput(
            custom_id="leaf7:panel:key", min_length=1, max_length=128
        )
        self.add_item(discord.ui.Label(text="Your key", component=self.key))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.commands.redeem(interaction, self.key.value)


class _PanelButton(discord.ui.Button["PanelView"]):
    """One of the panel's buttons: ``action`` answers the click."""

    def __init__(
        self,
        label: str,
        style: discord.ButtonStyle,
        name: str,
        action: Callable[[discord.Interaction], Awaitable[None]],
    ) -> None:
        super().__init__(label=label, style=style, custom_id=f"leaf7:panel:{name}")
        self.action = action

    async def callback(self, interaction: discord.Interaction) -> None:
        await self.action(interaction)


class PanelView(discord.ui.View):
    """The buyer panel's buttons. Persistent: no timeout and fixed ``custom_id``s, registered
    with ``add_view`` when the bot starts, so a panel posted before a restart keeps working."""

    def __init__(self, commands: Commands) -> None:
        super().__init__(timeout=None)
        self.commands = commands
        for label, style, name, action in (
            ("Redeem", discord.ButtonStyle.success, "redeem", self.redeem),
            ("Get script", discord.ButtonStyle.primary, "script", commands.script),
            ("Reset HWID", discord.ButtonStyle.secondary, "resethwid", commands.resethwid),
            ("Key info", discord.ButtonStyle.secondary, "keyinfo", commands.mykey),
        ):
            self.add_item(_PanelButton(label, style, name, action))

    async def redeem(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(RedeemModal(self.commands))


def build_bot(client: Leaf7Client) -> tuple[discord.Client, app_commands.CommandTree[Any]]:
    bot = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(bot)
    commands = Commands(client)

    @tree.command(name="redeem", description="Redeem a key you bought")
    @app_commands.describe(key="The key you received")
    async def redeem(interaction: discord.Interaction, key: str) -> None:
        await commands.redeem(interaction, key)

    @tree.command(name="resethwid", description="Reset the HWID bound to your key")
    async def resethwid(interaction: discord.Interaction) -> None:
        await commands.resethwid(interaction)

    @tree.command(name="mykey", description="Show your key: expiry, executions, HWID")
    async def mykey(interaction: discord.Interaction) -> None:
        await commands.mykey(interaction)

    @tree.command(name="script", description="Get your ready-to-paste loader")
    async def script(interaction: discord.Interaction) -> None:
        await commands.script(interaction)

    @tree.command(name="panel", description="Post the buyer panel in this channel")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def panel(interaction: discord.Interaction) -> None:
        await commands.panel(interaction)

    # Panels posted before a restart: their buttons are routed to this view again.
    bot.add_view(PanelView(commands))

    @bot.event
    async def setup_hook() -> None:
        await tree.sync()

    return bot, tree


class BotConfigError(ValueError):
    pass


def config_from_env() -> tuple[str, str, str, str]:
    names = ("DISCORD_TOKEN", "LEAF7_API_URL", "LEAF7_API_KEY", "LEAF7_PROJECT_ID")
    values = [os.environ.get(n, "").strip() for n in names]
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise BotConfigError("missing environment variables: " + ", ".join(missing))
    return values[0], values[1], values[2], values[3]


def role_sync_from_env(env: Mapping[str, str]) -> tuple[str, RoleSyncConfig] | None:
    """Role sync runs unless ``LEAF7_ROLE_SYNC=0``: it needs only the bot's API key (the
    vendor's role changes come from the HTTP API, never from the store). Returns (Discord API
    base, config) or None."""
    if env.get("LEAF7_ROLE_SYNC", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    base = env.get("DISCORD_API_BASE", "").strip() or DEFAULT_API_BASE
    if not base.startswith(("https://", "http://")):
        raise BotConfigError(f"DISCORD_API_BASE must be an http(s) URL, got {base!r}")
    return base, RoleSyncConfig()


def run() -> None:
    token, api_url, api_key, project_id = config_from_env()
    role_sync = role_sync_from_env(os.environ)

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(Leaf7Client(api_url, api_key, project_id))
            bot, _ = build_bot(client)
            await stack.enter_async_context(bot)
            if role_sync is not None:
                base, config = role_sync
                rest = await stack.enter_async_context(DiscordRest(token, base))
                task = asyncio.ensure_future(RoleSync(client, rest, config).run())
                stack.callback(task.cancel)
                log.info("role sync on (the vendor's projects, through %s)", api_url)
            await bot.start(token)

    asyncio.run(main())
