"""The Discord bot: its API client against a live server, and each command's callback with a
fake interaction (no Discord network)."""

import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from service.bot import Commands, _duration, build_bot
from service.botclient import ApiError, Leaf7Client
from tests.support.api import Api, Clock, execute, setup_key

USER = 80351110224678912


class FakeResponse:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bool]] = []

    async def send_message(self, content: str, *, ephemeral: bool = False) -> None:
        self.sent.append((content, ephemeral))


class FakeInteraction:
    def __init__(self, user_id: int = USER) -> None:
        self.user = SimpleNamespace(id=user_id)
        self.response = FakeResponse()

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


async def test_commands(api: Api, clock: Clock) -> None:
    pid, kid = await setup_key(api, key_days=1)
    commands, client = await bot_for(api, pid, clock)
    try:
        i = FakeInteraction()
        await commands.mykey(i)
        assert i.reply == "You have no key for this script. Redeem one with /redeem."
        i = FakeInteraction()
        await commands.script(i)
        assert "no usable key" in i.reply
        i = FakeInteraction()
        await commands.redeem(i, "  nope  ")
        assert i.reply == "Key not found"
        i = FakeInteraction()
        await commands.redeem(i, f" {kid} ")
        assert i.reply.startswith(f"Key redeemed: `{kid[:6]}…` expires ")
        assert "(1d left)" in i.reply and "no HWID bound yet" in i.reply
        i = FakeInteraction()
        await commands.redeem(i, kid)
        assert i.reply == "Key already redeemed"
        i = FakeInteraction()
        await commands.resethwid(i)
        assert i.reply == "No HWID is bound to your key yet: nothing to reset."
        await execute(api, pid, kid, hwid="pc-1")
        i = FakeInteraction()
        await commands.mykey(i)
        assert "1 executions; HWID bound" in i.reply
        i = FakeInteraction()
        await commands.resethwid(i)
        assert i.reply == "Your HWID was reset. Run the script on your new device."
        await execute(api, pid, kid, hwid="pc-2")
        i = FakeInteraction()
        await commands.resethwid(i)
        assert i.reply == "HWID reset is on cooldown: try again in 1d."
        i = FakeInteraction()
        await commands.script(i)
        assert f'script_key = "{kid}"' in i.reply and "loader.lua" in i.reply
        # Someone else: their own (empty) view.
        i = FakeInteraction(user_id=1)
        await commands.resethwid(i)
        assert i.reply == "You have no key for this script. Redeem one with /redeem."
        # Banned: no loader, no reset.
        await api.call("POST", f"/api/vendor/keys/active/{kid}/ban")
        i = FakeInteraction()
        await commands.script(i)
        assert "no usable key" in i.reply
        clock.advance(86400)
        i = FakeInteraction()
        await commands.resethwid(i)
        assert i.reply == "Key is banned"
        i = FakeInteraction()
        await commands.mykey(i)
        assert "**banned**" in i.reply and "expired on" in i.reply
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
            "redeem",
            "resethwid",
            "script",
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
