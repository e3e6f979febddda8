"""The dashboard screenshots of docs/dashboard.md (docs/img/, 1280 and 375 px wide), with
realistic data: ``make screenshots``.

Starts a real ``leaf7 serve`` on a fresh embedded Valkey in a temporary directory, creates a
vendor and, through the HTTP API as a vendor and its buyers would, a few projects, keys
redeemed by Discord users, loader runs from several machines, bans, a blacklist and a hosted
script; then signs in to the dashboard in Debian's Chromium (Playwright) and screenshots every
page in PAGES. A page the server does not have (404) is left out and said so.

    python bench/screenshots.py [--out docs/img]
"""

import argparse
import json
import random
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout: tests/support (not shipped) is used too

from playwright import sync_api  # noqa: E402

from tests.support.browser import launch  # noqa: E402
from tests.support.processes import create_vendor, serving  # noqa: E402

VENDOR = "Nightfall Scripts"
VENDOR_DISCORD = "283719204651991040"
WIDTHS = (1280, 375)
ENV = {
    "LEAF7_RATE_KEYGEN": "0",
    "LEAF7_RATE_VENDOR": "0",
    "LEAF7_RATE_EXECUTE": "0",
    # The loader runs below come "from" several clients: X-Forwarded-For of a trusted peer.
    "LEAF7_TRUSTED_PROXIES": "127.0.0.1",
    # The URL buyers would see in the loader snippet (its Secure cookies: Chromium keeps them
    # for http://127.0.0.1, a secure context).
    "LEAF7_PUBLIC_URL": "https://keys.nightfall.gg",
}

# Buyers: Discord snowflakes, each with the machine (HWID) and executor they run on.
BUYERS = [
    ("412368947205013504", "Wave 2.6.1"),
    ("739214580316291072", "Synapse Z 1.4"),
    ("861047392118603786", "Solara 3.0.2"),
    ("1089457301629214720", "Wave 2.6.1"),
    ("954120378641039360", "Delta 2.655"),
    ("298573610492379137", "Codex 2.6.4"),
    ("1120583640175931402", "Solara 3.0.2"),
    ("705948213567209512", "Synapse Z 1.4"),
]

BLOX_HUB = """\
-- Blox Hub: one hub for the games below, loaded by the leaf7 loader.
local Players = game:GetService("Players")
local RunService = game:GetService("RunService")
local player = Players.LocalPlayer

local GAMES = {
  [2753915549] = "Blox Fruits",
  [142823291] = "Murder Mystery 2",
  [286090429] = "Arsenal",
  [920587237] = "Adopt Me!",
}

local game_name = GAMES[game.PlaceId]
if not game_name then
  warn("[Blox Hub] this game is not supported yet")
  return
end

local left = L7_SecondsLeft == "Lifetime" and "lifetime"
  or string.format("%d days left", math.floor(L7_SecondsLeft / 86400))
print(string.format("[Blox Hub %s] %s for %s (%s, run #%d)", L7_ScriptVersion, game_name,
  player.Name, left, L7_TotalExecutions))

local settings = { autofarm = false, esp = true, walkspeed = 16 }
RunService.Heartbeat:Connect(function()
  local humanoid = player.Character and player.Character:FindFirstChildOfClass("Humanoid")
  if humanoid then
    humanoid.WalkSpeed = settings.walkspeed
  end
end)
"""


def call(base: str, method: str, path: str, body: Any = None, **headers: str) -> Any:
    """One JSON request; anything but 2xx stops the run with the answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)  # noqa: S310
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        req.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            raise SystemExit(f"{method} {path}: {exc.code} {exc.read()!r}") from None


def seed(base: str, api_key: str) -> dict[str, Any]:
    """The data the pages show; returns what the page list needs (ids)."""
    rnd = random.Random(7)  # the same pictures every run
    auth = {"Authorization": f"Bearer {api_key}"}

    def api(method: str, path: str, body: Any = None) -> Any:
        return call(base, method, path, body, **auth)

    hub = api(
        "POST",
        "/api/vendor/projects",
        {
            "name": "Blox Hub",
            "description": "Universal hub: Blox Fruits, MM2, Arsenal, Adopt Me!",
            "hwid_reset_cooldown": 43200,
        },
    )
    arsenal = api(
        "POST",
        "/api/vendor/projects",
        {
            "name": "Arsenal Aimbot",
            "description": "Silent aim, ESP and triggerbot for Arsenal",
        },
    )
    petsim = api(
        "POST",
        "/api/vendor/projects",
        {
            "name": "Pet Sim 99 Autofarm",
            "description": "Auto-farm, auto-hatch and mailbox sniper",
        },
    )
    jailbreak = api(
        "POST",
        "/api/vendor/projects",
        {
            "name": "Jailbreak Autorob",
            "description": "Paused until it is updated for the new heist",
        },
    )
    api("PATCH", f"/api/vendor/projects/{jailbreak['project_id']}", {"is_active": False})
    api(
        "PUT",
        f"/api/vendor/projects/{hub['project_id']}/source",
        {"source": BLOX_HUB, "version": "2.4.1"},
    )
    api(
        "PUT",
        f"/api/vendor/projects/{arsenal['project_id']}/source",
        {"source": 'print("Arsenal Aimbot " .. L7_ScriptVersion)\n', "version": "1.8.0"},
    )
    api(
        "PUT",
        f"/api/vendor/projects/{petsim['project_id']}/source",
        {"source": 'print("Pet Sim 99 Autofarm " .. L7_ScriptVersion)\n', "version": "3.2.0"},
    )

    def generate(project: dict[str, Any], amount: int, note: str, **duration: int) -> list[str]:
        body = {"project_id": project["project_id"], "amount": amount, "note": note, **duration}
        return [k["key_id"] for k in api("POST", "/api/vendor/keys/buyer", body)]

    hub_keys = (
        generate(hub, 6, "Sellix: monthly", key_days=30)
        + generate(hub, 3, "Sellix: lifetime", key_days=0)
        + generate(hub, 4, "Weekly trial", key_days=7)
    )
    aim_keys = generate(arsenal, 5, "SellAuth: monthly", key_days=30) + generate(
        arsenal, 2, "Giveaway winner", key_days=3
    )
    generate(petsim, 4, "Reseller: Kaito", key_days=30)

    def machine() -> str:  # an executor's HWID
        return str(uuid.UUID(int=rnd.getrandbits(128), version=4)).upper()

    def run(project: dict[str, Any], key: str, hwid: str, executor: str, ip: str) -> None:
        body = {
            "project_id": project["project_id"],
            "script_key": key,
            "hwid": hwid,
            "executor": executor,
        }
        call(base, "POST", "/api/loader/execute", body, X_Forwarded_For=ip)

    # Redeemed by the bot for six buyers; the keys run on their machines a few times.
    hwids: dict[str, str] = {}
    for i, (discord_id, executor) in enumerate(BUYERS[:6]):
        key = hub_keys[i]
        api("POST", "/api/vendor/keys/redeem", {"key_id": key, "discord_id": discord_id})
        hwids[key] = machine()
        ip = f"203.0.113.{rnd.randrange(2, 250)}"
        for _ in range(rnd.randrange(2, 9)):
            run(hub, key, hwids[key], executor, ip)
    for i, (discord_id, executor) in enumerate(BUYERS[4:]):
        key = aim_keys[i]
        api("POST", "/api/vendor/keys/redeem", {"key_id": key, "discord_id": discord_id})
        run(arsenal, key, machine(), executor, f"198.51.100.{rnd.randrange(2, 250)}")
    # A lifetime key redeemed by its first loader run (no Discord user).
    run(hub, hub_keys[6], machine(), "Delta 2.655", "192.0.2.77")
    # Someone sharing a key: another machine is refused (KEY_HWID_LOCKED); a mistyped key.
    run(hub, hub_keys[1], machine(), "Solara 3.0.2", "198.51.100.23")
    typo = hub_keys[5][:-1] + ("b" if hub_keys[5][-1] == "a" else "a")
    run(hub, typo, machine(), "Wave 2.6.1", "198.51.100.24")

    api(
        "POST",
        f"/api/vendor/keys/active/{hub_keys[1]}/ban",
        {"reason": "Shared the key in a public Discord"},
    )
    api(
        "POST",
        f"/api/vendor/keys/active/{hub_keys[3]}/ban",
        {"reason": "Chargeback opened on PayPal", "duration": 7 * 86400},
    )
    api(
        "PATCH",
        f"/api/vendor/keys/active/{hub_keys[0]}",
        {"note": "Sellix: monthly, renewed twice"},
    )
    api("POST", f"/api/vendor/keys/active/{hub_keys[2]}/reset_hwid")
    api("POST", "/api/vendor/blacklist", {"ip": "203.0.113.0/24", "reason": "Chargebacks"})
    api(
        "POST",
        "/api/vendor/blacklist",
        {"hwid": machine(), "reason": "Posted the script on a leak forum"},
    )
    # Free keys on the Pet Sim project: two ad checkpoints, and players opening the page.
    pet = petsim["project_id"]
    api(
        "PUT",
        f"/api/vendor/projects/{pet}/free_keys",
        {
            "enabled": True,
            "key_hours": 24,
            "min_seconds": 15,
            "checkpoints": [
                {
                    "provider": "workink",
                    "link": "https://work.ink/2bQ/petsim99-autofarm",
                    "link_id": "2bQ7f",
                },
                {
                    "provider": "linkvertise",
                    "link": "https://link-target.net/1184632/petsim99-autofarm-key",
                    "token": "f3c9a1d27be84c06a51e9d7730b2c4e8",
                },
            ],
        },
    )
    for _ in range(9):
        url = call(base, "POST", "/api/loader/getkey", {"project_id": pet, "hwid": machine()})
        path = "/" + url["url"].split("/", 3)[3]  # the public URL's path, asked of this server
        with urllib.request.urlopen(base + path, timeout=10) as resp:  # noqa: S310
            resp.read()
    return {"hub": hub["project_id"], "pet": pet, "user": BUYERS[4][0]}


# Each page: its docs/img name and its path (``{hub}``, ``{pet}``, ``{user}``: seeded ids).
PAGES = [
    ("overview", "/dashboard/"),
    ("projects", "/dashboard/projects"),
    ("project", "/dashboard/projects/{hub}"),
    ("keys", "/dashboard/projects/{hub}/keys"),
    ("keys-active", "/dashboard/projects/{hub}/keys?tab=active"),
    ("script", "/dashboard/projects/{hub}/script"),
    ("free-keys", "/dashboard/projects/{pet}/free_keys"),
    ("users", "/dashboard/users?discord_id={user}"),
    ("blacklist", "/dashboard/blacklist"),
    ("leaks", "/dashboard/leaks"),
    ("events", "/dashboard/events"),
    ("settings", "/dashboard/settings"),
]


def shoot(page: Any, out: Path, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(250)  # the chart follows the resize
        page.screenshot(path=str(out / f"dashboard-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def screenshots(base: str, api_key: str, ids: dict[str, str], out: Path) -> list[str]:
    taken = []
    with sync_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
            page.set_default_timeout(15_000)
            page.goto(base + "/dashboard/signin", wait_until="networkidle")
            shoot(page, out, "signin")
            taken.append("signin")
            page.get_by_label("API key").fill(api_key)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/dashboard/")
            for name, path in PAGES:
                response = page.goto(base + path.format(**ids), wait_until="networkidle")
                if response is None or response.status == 404:
                    print(f"screenshots: no page {path} here, left out", file=sys.stderr)
                    continue
                if response.status != 200:
                    raise SystemExit(f"screenshots: {path} answered {response.status}")
                shoot(page, out, name)
                taken.append(name)
        finally:
            browser.close()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="leaf7-shots-") as tmp:
        data_dir = Path(tmp) / "data"
        vendor = create_vendor(data_dir, VENDOR, VENDOR_DISCORD)
        with serving(data_dir, ENV) as server:
            ids = seed(server.base, vendor["api_key"])
            taken = screenshots(server.base, vendor["api_key"], ids, args.out)
    for name in taken:
        print(" ".join(str(args.out / f"dashboard-{name}-{w}.png") for w in WIDTHS))


if __name__ == "__main__":
    main()
