"""Free keys through ad checkpoints (docs/free-keys.md): a project's settings, the machines
that asked for a key, the get-key sessions, and the funnel.

The get-key page's steps are each one script in the project's slot: a checkpoint starts
(``lua/free_keys_start.lua``), a checkpoint completes and, after the last one, the key is
issued or extended (``lua/free_keys_complete.lua``), a LootLabs postback is recorded once
(``lua/free_keys_postback.lua``); the settings are written by ``lua/free_keys_set.lua``, which
also sets the project hash's ``free_keys`` flag the loader check reads.
"""

import asyncio
import hashlib
import time
from collections.abc import Sequence

import msgspec

from store import keyspace
from store.core import Core
from store.errors import ProjectNotFound, StoreError
from store.licences import new_key_id
from store.models import RateLimit, pairs
from store.projects import Projects

# How long each record lives (seconds).
SESSION_TTL = 3600  # a get-key session: every checkpoint within the hour
MACHINE_TTL = 30 * 86400  # a machine that asked for a key (refreshed by every ask)
TOKEN_TTL = 2 * 86400  # a used provider token (fresh tokens are minutes old)
POSTBACK_TTL = 3600
FUNNEL_TTL = 100 * 86400
FUNNEL_DAYS = 90  # the analytics route's longest range


class FreeSecretMissing(StoreError):
    """A checkpoint that needs a secret (a Linkvertise publisher token) has none."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class FreeState(msgspec.Struct, kw_only=True):
    """What the get-key page needs of a project: its name, description, owner, whether free
    keys are on, the settings (JSON) and their secrets."""

    vendor_id: str
    name: str
    description: str
    enabled: bool
    config: str  # JSON ('' before the first PUT)
    secrets: dict[str, str]  # secret:<k>, postback:<k>, turnstile


class Machine(msgspec.Struct, kw_only=True):
    hwid: str
    key_id: str | None
    expires_at: int | None  # the key's expiry while it lives (None: no live key)
    extends: int


class Outcome(msgspec.Struct, kw_only=True):
    """A script's answer: ``code`` (``OK``, ``NEXT``, ``ISSUED``, ``EXTENDED``, ``HAS_KEY`` or
    a refusal), the step, the key and its expiry where they apply."""

    code: str
    step: int = 0
    key_id: str | None = None
    expires_at: int | None = None


def day_of(now: int) -> int:
    return now // 86400


class FreeKeys:
    def __init__(self, core: Core, projects: Projects) -> None:
        self.core = core
        self.projects = projects

    # ---- the vendor's settings ----------------------------------------------------------

    async def settings(self, vendor_id: str, project_id: str) -> tuple[str, dict[str, str]]:
        """(settings JSON or '', secrets) of the vendor's project."""
        await self.projects.get(vendor_id, project_id)
        h = pairs(await self.core.call("HGETALL", keyspace.free_config(project_id)))
        config = h.pop("config", "")
        return config, h

    async def save(
        self,
        vendor_id: str,
        project_id: str,
        *,
        enabled: bool,
        config: str,
        turnstile_secret: str,
        checkpoint_secrets: Sequence[tuple[str, bool, str]],
    ) -> list[str]:
        """Writes the settings; ``checkpoint_secrets``, one per checkpoint: (secret: '' keep,
        '-' none; needs one; postback secret candidate, '' none). Returns each checkpoint's
        postback secret."""
        args: list[str | int] = [vendor_id, "1" if enabled else "0", config, turnstile_secret]
        args.append(len(checkpoint_secrets))
        for secret, needs, candidate in checkpoint_secrets:
            args += (secret, "1" if needs else "0", candidate)
        try:
            out: list[str] = await self.core.script(
                self.core.scripts.free_keys_set,
                [keyspace.project(project_id), keyspace.free_config(project_id)],
                args,
                durable=True,
            )
        except Exception as exc:
            text = str(exc)
            if text.startswith("L7:FREE_SECRET_MISSING:"):
                raise FreeSecretMissing(int(text.rpartition(":")[2])) from None
            raise
        return [str(x) for x in out]

    # ---- the player's side ----------------------------------------------------------------

    async def state(self, project_id: str) -> FreeState:
        """The project as the get-key page shows it (``ProjectNotFound``: none)."""
        h, cfg = await asyncio.gather(
            self.core.call(
                "HMGET", keyspace.project(project_id), "vendor_id", "name", "description",
                "free_keys",
            ),
            self.core.call("HGETALL", keyspace.free_config(project_id)),
        )  # fmt: skip
        if h[0] is None:
            raise ProjectNotFound
        secrets = pairs(cfg)
        config = secrets.pop("config", "")
        return FreeState(
            vendor_id=h[0],
            name=h[1] or "",
            description=h[2] or "",
            enabled=h[3] == "1",
            config=config,
            secrets=secrets,
        )

    async def remember(self, project_id: str, machine_id: str, hwid: str) -> None:
        """A loader run of this machine asked for a key: its HWID under its opaque id."""
        name = keyspace.free_machine(project_id, machine_id)
        await asyncio.gather(
            self.core.call("HSET", name, "hwid", hwid),
            # (longer than any key lives: key_hours is at most 30 days)
            self.core.call("EXPIRE", name, MACHINE_TTL),
        )

    async def hit_getkey(self, project_id: str, subject: str, limit: int, window: int) -> RateLimit:
        """One ``POST /api/loader/getkey`` of a client IP (or IPv6 /64) in the project against
        its fixed window (each call may write a machine record that lives 30 days)."""
        allowed, remaining, reset, retry = await self.core.script(
            self.core.scripts.rate_limit,
            [keyspace.free_getkey_rate(project_id, subject)],
            [self.core.now(), window, limit],
        )
        return RateLimit(bool(int(allowed)), limit, int(remaining), int(reset), int(retry))

    async def machine(self, project_id: str, machine_id: str) -> Machine | None:
        h = pairs(await self.core.call("HGETALL", keyspace.free_machine(project_id, machine_id)))
        if "hwid" not in h:
            return None
        key_id = h.get("key_id")
        expires = None
        if key_id:
            raw = await self.core.call("HGET", keyspace.key(project_id, key_id), "expires_at")
            if raw and int(raw) > self.core.now():
                expires = int(raw)
        return Machine(
            hwid=h["hwid"],
            key_id=key_id if expires else None,
            expires_at=expires,
            extends=int(h.get("extends") or 0),
        )

    async def session(self, project_id: str, session_id: str) -> dict[str, str]:
        return pairs(await self.core.call("HGETALL", keyspace.free_session(project_id, session_id)))

    async def start(
        self,
        project_id: str,
        *,
        mode: str,
        machine_id: str,
        session_id: str,
        ip: str,
        subject: str,
        browser: str,
        click: str,
        checkpoints: int,
        keys_per_day: int,
        allow_extend: bool,
        max_extends: int,
        ip_limit: int,
        ip_window: int,
    ) -> Outcome:
        """A checkpoint starts: the first (``mode`` ``new``/``extend``: a new session) or the
        session's next (``next``). See lua/free_keys_start.lua."""
        now = self.core.now()
        p = project_id
        out = await self.core.script(
            self.core.scripts.free_keys_start,
            [
                keyspace.project(p),
                keyspace.free_machine(p, machine_id),
                keyspace.free_session(p, session_id),
                keyspace.free_sessions_rate(p, subject),
                keyspace.free_funnel(p, day_of(now)),
            ],
            [
                now, mode, machine_id, ip, browser, SESSION_TTL, ip_limit, ip_window,
                keys_per_day, day_of(now), click, keyspace.key_prefix(p), checkpoints,
                "1" if allow_extend else "0", max_extends, FUNNEL_TTL,
            ],
        )  # fmt: skip
        return Outcome(code=out[0], step=int(out[1]) if len(out) > 1 else 0)

    async def complete(
        self,
        vendor_id: str,
        project_id: str,
        *,
        step: int,
        session_id: str,
        machine_id: str,
        ip: str,
        browser: str,
        token: str,
        click: str | None,
        checkpoints: int,
        min_seconds: int,
        key_hours: int,
        keys_per_day: int,
        allow_extend: bool,
        max_extends: int,
    ) -> Outcome:
        """The player came back from checkpoint ``step``, its provider having confirmed
        ``token`` ('' for none: LootLabs, confirmed by ``click``'s postback). See
        lua/free_keys_complete.lua."""
        now = self.core.now()
        p = project_id
        key_id = new_key_id()
        token_key = keyspace.free_token(p, token_digest("token", token))
        postback = keyspace.free_postback(p, click or "-")
        out = await self.core.script(
            self.core.scripts.free_keys_complete,
            [
                keyspace.project(p),
                keyspace.free_session(p, session_id),
                keyspace.free_machine(p, machine_id),
                token_key,
                postback,
                keyspace.free_funnel(p, day_of(now)),
                keyspace.buyer_index(p),
                keyspace.active_index(p),
                *keyspace.event_streams(p),
            ],
            [
                now, step, ip, browser, machine_id, min_seconds, checkpoints, key_hours,
                keys_per_day, day_of(now), key_id, self.core.retention, max_extends,
                keyspace.key_prefix(p), TOKEN_TTL, "1" if click else "0", FUNNEL_TTL,
                MACHINE_TTL, "1" if allow_extend else "0", "1" if token else "0", click or "",
            ],
            durable=True,
        )  # fmt: skip
        code = out[0]
        if code == "NEXT":
            return Outcome(code=code, step=int(out[1]))
        if code in ("ISSUED", "EXTENDED", "HAS_KEY"):
            issued, expires = str(out[1]), int(out[2])
            if code == "ISSUED":
                # The vendor's bare key id resolves to the project (store/keyrefs.py); it
                # lives as long as the key hash.
                at_ms = (expires + self.core.retention) * 1000
                await self.core.call("SET", keyspace.key_ref(vendor_id, issued), p, "PXAT", at_ms)
            elif code == "EXTENDED":
                at_ms = (expires + self.core.retention) * 1000
                await self.core.call("PEXPIREAT", keyspace.key_ref(vendor_id, issued), at_ms)
            return Outcome(code=code, key_id=issued, expires_at=expires)
        return Outcome(code=code)

    async def postback(self, project_id: str, click: str, unique_id: str, ip: str) -> bool:
        """A LootLabs postback; False for a ``unique_id`` seen before."""
        done = await self.core.script(
            self.core.scripts.free_keys_postback,
            [
                keyspace.free_token(project_id, token_digest("lootlabs", unique_id)),
                keyspace.free_postback(project_id, click),
            ],
            [self.core.now(), ip, POSTBACK_TTL],
        )
        return bool(done)

    async def count(self, project_id: str, field: str) -> None:
        """One more of ``field`` in today's funnel (a page view, a refusal decided before any
        script: a provider's no, an outage)."""
        name = keyspace.free_funnel(project_id, day_of(self.core.now()))
        await asyncio.gather(
            self.core.call("HINCRBY", name, field, 1),
            self.core.call("EXPIRE", name, FUNNEL_TTL),
        )

    async def funnel(
        self, vendor_id: str, project_id: str, days: int
    ) -> list[tuple[int, dict[str, int]]]:
        """(epoch day, counters) of the last ``days`` days, oldest first."""
        await self.projects.get(vendor_id, project_id)
        today = day_of(self.core.now())
        wanted = [today - i for i in range(days - 1, -1, -1)]
        flats = await asyncio.gather(
            *(self.core.call("HGETALL", keyspace.free_funnel(project_id, d)) for d in wanted)
        )
        return [
            (d, {f: int(v) for f, v in pairs(flat).items()})
            for d, flat in zip(wanted, flats, strict=True)
        ]


def token_digest(kind: str, token: str) -> str:
    """What a used token is remembered by (its SHA-256; never the token itself)."""
    return hashlib.sha256(f"{kind}\n{token}".encode()).hexdigest()


def iso_day(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))
