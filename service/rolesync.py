"""Discord role sync: the bot's consumer of the role stream, and its Discord REST client.

The store side (the stream, the consumer group, the re-check set and its sweep, the state of
a user's keys) is store/roles.py. Here, each entry read (or claimed from a bot that died) is
applied by reading the user's keys *now* and sending Discord the matching idempotent call,
``PUT`` (holds a valid key) or ``DELETE`` (does not) of
``/guilds/{guild}/members/{user}/roles/{role}``; the entry is acknowledged only after Discord
answered. If the user's keys changed while the call was in flight, the state is read again
and the call repeated, so two bots applying entries of the same user at once still end on the
right role. A member who left the guild (404 Unknown Member) is done, not an error.

The same bot also reads the revoke stream of its project's guild (roles granted by a deleted
project of the vendor; the guild is remembered, and a deleted project's bot finds it through
the store): each entry is a ``DELETE`` of the role, unless the user still holds a valid key in
another project of the vendor granting the same role in the same guild.

The REST client honours Discord's rate limits: per-route buckets (``X-RateLimit-Bucket``,
``-Remaining``, ``-Reset-After``: a request waits while its bucket is empty), 429 (waits
``Retry-After`` / ``retry_after``, global or not) and retries 5xx and lost connections with
exponential backoff. Without discord.py: aiohttp against ``DISCORD_API_BASE``.
"""

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
import msgspec

from store import Store
from store.errors import StoreUnavailable
from store.roles import EVERYONE, Revoke, RoleChange

log = logging.getLogger("leaf7.rolesync")

DEFAULT_API_BASE = "https://discord.com/api/v10"
# JSON error codes of Discord that mean "this member (or user) is not there": nothing to do.
UNKNOWN_MEMBER = 10007
UNKNOWN_USER = 10013


class DiscordError(Exception):
    """Discord refused the call for good (a 4xx: missing permission, unknown role or guild):
    retrying the same call cannot help."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"Discord answered {status} (code {code}): {message}")
        self.status = status
        self.code = code


class DiscordUnavailable(Exception):
    """Discord did not answer usefully after every retry (5xx, timeouts): try again later."""


class _ErrorBody(msgspec.Struct):
    code: int = 0
    message: str = ""
    retry_after: float | None = None
    global_: bool = msgspec.field(default=False, name="global")


_error_decoder = msgspec.json.Decoder(_ErrorBody)


def _error_body(body: bytes) -> _ErrorBody:
    try:
        return _error_decoder.decode(body)
    except msgspec.MsgspecError:
        return _ErrorBody()


@dataclass
class _Bucket:
    remaining: int
    reset_at: float  # monotonic


class DiscordRest:
    """The two role calls of Discord's REST API, rate-limited and retried."""

    def __init__(
        self,
        token: str,
        base: str = DEFAULT_API_BASE,
        *,
        timeout: float = 10.0,
        attempts: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base = base.rstrip("/")
        self.attempts = attempts  # failures (5xx, connection) before DiscordUnavailable
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bot {token}", "User-Agent": "leaf7 (role sync)"},
            timeout=aiohttp.ClientTimeout(total=timeout),
        )
        self._route_bucket: dict[str, str] = {}  # route -> Discord's bucket id
        self._buckets: dict[str, _Bucket] = {}
        self._global_until = 0.0
        self.calls = 0  # requests sent, retries included
        self.rate_limited = 0  # 429 answers

    async def __aenter__(self) -> "DiscordRest":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    async def set_role(self, guild: str, user: str, role: str, present: bool) -> bool:
        """Grants (``present``) or removes the role; False when the user is not a member of
        the guild (nothing to do)."""
        method = "PUT" if present else "DELETE"
        url = f"{self.base}/guilds/{guild}/members/{user}/roles/{role}"
        # Discord's buckets are per route and major parameter (the guild).
        route = f"{method} /guilds/{guild}/members/roles"
        failures = 0
        limited = 0
        while True:
            await self._wait_for_bucket(route)
            self.calls += 1
            try:
                async with self._session.request(
                    method, url, headers={"X-Audit-Log-Reason": "leaf7 role sync"}
                ) as resp:
                    body = await resp.read()
                    self._update_bucket(route, resp.headers)
                    status = resp.status
                    headers = resp.headers
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures += 1
                if failures >= self.attempts:
                    raise DiscordUnavailable(f"Discord unreachable: {exc!r}") from exc
                await self._sleep(self._delay(failures))
                continue
            if status < 300:
                return True
            if status == 429:
                self.rate_limited += 1
                limited += 1
                err = _error_body(body)
                wait = _retry_after(headers, err)
                if err.global_ or headers.get("X-RateLimit-Global") == "true":
                    self._global_until = time.monotonic() + wait
                if limited > 20:
                    raise DiscordUnavailable("Discord kept answering 429")
                await self._sleep(wait)
                continue
            if status >= 500:
                failures += 1
                if failures >= self.attempts:
                    raise DiscordUnavailable(f"Discord answered {status}")
                await self._sleep(self._delay(failures))
                continue
            err = _error_body(body)
            if status == 404 and err.code in (UNKNOWN_MEMBER, UNKNOWN_USER):
                return False
            raise DiscordError(status, err.code, err.message)

    def _delay(self, failures: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** (failures - 1)))

    async def _wait_for_bucket(self, route: str) -> None:
        now = time.monotonic()
        wait = self._global_until - now
        bucket = self._buckets.get(self._route_bucket.get(route, ""))
        if bucket is not None and bucket.remaining <= 0:
            wait = max(wait, bucket.reset_at - now)
        if wait > 0:
            await self._sleep(wait)

    def _update_bucket(self, route: str, headers: Any) -> None:
        bucket_id = headers.get("X-RateLimit-Bucket")
        if not bucket_id:
            return
        self._route_bucket[route] = bucket_id
        try:
            remaining = int(headers.get("X-RateLimit-Remaining", "1"))
            reset_after = float(headers.get("X-RateLimit-Reset-After", "0"))
        except ValueError:
            return
        self._buckets[bucket_id] = _Bucket(remaining, time.monotonic() + reset_after)


def _retry_after(headers: Any, err: _ErrorBody) -> float:
    """Seconds to wait after a 429: the body's ``retry_after`` (it has milliseconds), else
    the ``Retry-After`` header, else one second."""
    if err.retry_after is not None and err.retry_after >= 0:
        return float(err.retry_after)
    try:
        return max(0.0, float(headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


@dataclass
class RoleSyncConfig:
    poll: float = 1.0  # seconds between reads of the stream when it was empty
    sweep: float = 10.0  # seconds between sweeps of the re-check set (expiry)
    claim_idle: float = 60.0  # a pending entry idle this long is claimed (its bot died)
    batch: int = 50  # entries per read; users moved per sweep


def default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class RoleSync:
    """Applies one project's role stream (``run``: forever; ``step``: one round)."""

    def __init__(
        self,
        store: Store,
        rest: DiscordRest,
        project_id: str,
        config: RoleSyncConfig | None = None,
        consumer: str | None = None,
    ) -> None:
        self.store = store
        self.rest = rest
        self.project_id = project_id
        self.config = config or RoleSyncConfig()
        self.consumer = consumer or default_consumer()
        self._next_sweep = 0.0
        self._guilds: set[str] = set()  # guilds whose revoke stream this bot reads
        self._revoke_groups: set[str] = set()  # ... and whose consumer group exists
        self.applied = 0  # entries acknowledged
        self.dropped = 0  # entries Discord refused for good (logged)

    async def run(self) -> None:
        roles = self.store.roles
        while True:
            try:
                await roles.ensure_group(self.project_id)
                break
            except (StoreUnavailable, OSError) as exc:
                log.warning("role sync: storage unavailable (%r); retrying", exc)
                await asyncio.sleep(self.config.poll)
        while True:
            try:
                done = await self.step()
            except (StoreUnavailable, DiscordUnavailable, OSError) as exc:
                log.warning("role sync: %r; retrying", exc)
                done = 0
            except Exception:
                log.exception("role sync: unexpected error")
                done = 0
            if done < self.config.batch:
                await asyncio.sleep(self.config.poll)

    async def step(self) -> int:
        """One round: the sweep when due, then pending entries whose bot died, then new
        ones; returns how many entries were applied and acknowledged. An entry that could not
        be applied (Discord or storage unavailable) stays pending: claimed again later."""
        roles = self.store.roles
        cfg = self.config
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + cfg.sweep
            while await roles.sweep(self.project_id, cfg.batch) >= cfg.batch:
                pass
        changes = await roles.claim(self.project_id, self.consumer, cfg.claim_idle, cfg.batch)
        if len(changes) < cfg.batch:
            changes += await roles.read(self.project_id, self.consumer, cfg.batch - len(changes))
        done = 0
        for change in changes:
            try:
                await self._touching(
                    self._apply(change),
                    functools.partial(
                        roles.touch, self.project_id, self.consumer, [change.entry_id]
                    ),
                )
            except DiscordError as exc:
                # A missing permission, an unknown role: the same call can never succeed.
                # Fixed and saved again (PATCH discord_role_id), the project re-syncs everyone.
                self.dropped += 1
                log.error("role sync: %s; entry %s dropped", exc, change.entry_id)
            await roles.ack(self.project_id, change.entry_id)
            self.applied += 1
            done += 1
        guild = await roles.revoke_guild(self.project_id)
        if guild:
            self._guilds.add(guild)
        for g in sorted(self._guilds):
            done += await self._revokes(g)
        return done

    async def _revokes(self, guild: str) -> int:
        """One round of the guild's revoke stream: pending entries whose bot died, then new
        ones; returns how many were applied and acknowledged."""
        roles = self.store.roles
        cfg = self.config
        if guild not in self._revoke_groups:
            await roles.ensure_revoke_group(guild)
            self._revoke_groups.add(guild)
        revokes = await roles.claim_revokes(guild, self.consumer, cfg.claim_idle, cfg.batch)
        if len(revokes) < cfg.batch:
            revokes += await roles.read_revokes(guild, self.consumer, cfg.batch - len(revokes))
        granting: dict[tuple[str, str, str], list[str]] = {}  # for this round
        done = 0
        for r in revokes:
            try:
                await self._touching(
                    self._revoke(r, granting),
                    functools.partial(roles.touch_revokes, guild, self.consumer, [r.entry_id]),
                )
            except DiscordError as exc:
                self.dropped += 1
                log.error("role sync: %s; revoke entry %s dropped", exc, r.entry_id)
            await roles.ack_revoke(guild, r.entry_id)
            self.applied += 1
            done += 1
        return done

    async def _revoke(self, r: Revoke, granting: dict[tuple[str, str, str], list[str]]) -> None:
        """Removes the role a deleted project granted, unless the user still holds a valid key
        in another project of the vendor granting the same role in the same guild; checked
        again after the call (a key redeemed meanwhile gives the role back)."""
        if not (r.guild and r.role and r.discord_id):
            return
        which = (r.vendor_id, r.guild, r.role)
        if which not in granting:
            granting[which] = await self.store.roles.granting(*which) if r.vendor_id else []
        projects = granting[which]

        async def holds() -> bool:
            for p in projects:
                state = await self.store.roles.state(p, r.discord_id)
                if (state.guild, state.role, state.holds) == (r.guild, r.role, True):
                    return True
            return False

        if await holds():
            return  # kept: another project grants it (its own stream follows the user)
        await self.rest.set_role(r.guild, r.discord_id, r.role, False)
        if await holds():
            await self.rest.set_role(r.guild, r.discord_id, r.role, True)

    async def _touching(
        self, work: Awaitable[None], touch: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """Runs ``work``; while it takes long (rate limits, a big project's ``*``) the entry's
        idle time is reset now and then (``touch``) so no other bot claims it meanwhile."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.config.claim_idle / 3)
                if done:
                    task.result()
                    return
                await touch()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _apply(self, change: RoleChange) -> None:
        user = change.discord_id
        if user != EVERYONE:
            if user:
                await self.apply_user(user)
            return
        old_guild = change.fields.get("old_guild", "")
        old_role = change.fields.get("old_role", "")
        async for users in self.store.roles.users(self.project_id):
            for u in users:
                if old_guild and old_role:
                    await self.rest.set_role(old_guild, u, old_role, False)
                await self.apply_user(u)

    async def apply_user(self, user: str) -> None:
        """Gives the user's role the state of their keys now. Read again after the call: if
        the keys changed meanwhile (another bot may have applied that change first), once
        more, so the last call sent always matches the keys."""
        roles = self.store.roles
        state = await roles.state(self.project_id, user)
        for _ in range(5):
            if not state.guild or not state.role:
                return  # no role to sync (any more)
            await self.rest.set_role(state.guild, user, state.role, state.holds)
            again = await roles.state(self.project_id, user)
            if again == state:
                return
            state = again
