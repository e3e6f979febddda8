"""The Discord bot (``leaf7 bot``): slash commands that call leaf7's HTTP API.

discord.py is an optional extra (``pip install leaf7[bot]``); the server never imports this
module. Every reply is ephemeral, and errors are the API's own messages.
"""

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import discord
from discord import app_commands

from service.botclient import ApiError, Leaf7Client
from store.models import ActiveKey


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
            await self._reply(interaction, exc.detail)
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
                text = f"{exc.detail}: try again in {_duration(exc.retry_after)}."
            elif exc.status == 404 and exc.detail == "Key not found":
                text = NO_KEY
            else:
                text = exc.detail
            await self._reply(interaction, text)
            return
        if count:
            await self._reply(
                interaction, "Your HWID was reset. Run the script on your new device."
            )
        else:
            await self._reply(interaction, "No HWID is bound to your key yet: nothing to reset.")

    async def mykey(self, interaction: discord.Interaction) -> None:
        try:
            keys = await self.client.user_keys(str(interaction.user.id))
        except ApiError as exc:
            await self._reply(interaction, exc.detail)
            return
        if not keys:
            await self._reply(
                interaction, "You have no key for this script. Redeem one with /redeem."
            )
            return
        now = self.clock()
        await self._reply(interaction, "\n".join(describe(k, now) for k in keys))

    async def script(self, interaction: discord.Interaction) -> None:
        try:
            keys = await self.client.user_keys(str(interaction.user.id))
        except ApiError as exc:
            await self._reply(interaction, exc.detail)
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


def run() -> None:
    token, api_url, api_key, project_id = config_from_env()

    async def main() -> None:
        async with Leaf7Client(api_url, api_key, project_id) as client:
            bot, _ = build_bot(client)
            async with bot:
                await bot.start(token)

    import asyncio

    asyncio.run(main())
