"""Discord role sync: the bot's side, and its Discord REST client.

The bot holds no store address: it reads its vendor's role changes from leaf7's HTTP API with
its API key (``GET /api/vendor/role_sync/changes``, a long poll; handlers/rolesync.py,
store/roles.py), sends Discord the matching idempotent call for each, ``PUT`` (``grant``) or
``DELETE`` of ``/guilds/{guild}/members/{user}/roles/{role}``, and acknowledges the change
(``POST /api/vendor/role_sync/ack``) only after Discord answered. What to apply is decided by
the server from the user's keys when it hands the change out; a change not acknowledged within
the server's lease (a bot killed, Discord unavailable) is handed out again. A member who left
the guild (404 Unknown Member) is done, not an error.

The REST client honours Discord's rate limits: per-route buckets (``X-RateLimit-Bucket``,
``-Remaining``, ``-Reset-After``: a request waits while its bucket is empty), 429 (waits
``Retry-After`` / ``retry_after``, global or not) and retries 5xx and lost connections with
exponential backoff. Without discord.py: aiohttp against ``DISCORD_API_BASE``.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from service.botclient import ApiError, Leaf7Client, SessionClient

log = logging.getLogger(f"leaf7.{__name__}")

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


class DiscordRest(SessionClient):
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
    wait: float = 30.0  # seconds a read of the changes waits for one (long poll, at most 30)
    batch: int = 50  # changes per read (1 to 100)
    # Seconds between reads after one that was not full: a trickle of changes then costs at
    # most two API requests (read, acknowledge) per pause, within the vendor rate limit.
    pause: float = 3.0
    ack_every: float = 10.0  # applied changes are acknowledged at least this often
    retry: float = 5.0  # seconds before reading again after the API or Discord failed


class RoleSync:
    """Applies the vendor's role changes (``run``: forever; ``step``: one read)."""

    def __init__(
        self, client: Leaf7Client, rest: DiscordRest, config: RoleSyncConfig | None = None
    ) -> None:
        self.client = client
        self.rest = rest
        self.config = config or RoleSyncConfig()
        self.applied = 0  # changes acknowledged
        self.dropped = 0  # changes Discord refused for good (logged, acknowledged)

    async def run(self) -> None:
        cfg = self.config
        while True:
            try:
                done = await self.step(cfg.wait)
            except ApiError as exc:
                wait = exc.retry_after if exc.status == 429 and exc.retry_after else cfg.retry
                log.warning("role sync: the key server answered %s (%s)", exc.status, exc.detail)
                await asyncio.sleep(wait)
                continue
            except DiscordUnavailable as exc:
                log.warning("role sync: %s; retrying", exc)
                await asyncio.sleep(cfg.retry)
                continue
            except Exception:
                log.exception("role sync: unexpected error")
                await asyncio.sleep(cfg.retry)
                continue
            if done < cfg.batch:
                await asyncio.sleep(cfg.pause)

    async def step(self, wait: float = 0.0) -> int:
        """One read (waiting up to ``wait`` seconds for a change), each change applied, the
        applied ones acknowledged; returns how many changes were read. A change that could not
        be applied (Discord unavailable, the process killed) is not acknowledged: the server
        hands it out again once its lease has run out."""
        changes = await self.client.role_changes(wait, self.config.batch)
        done: list[str] = []
        since = time.monotonic()
        try:
            for change in changes:
                try:
                    await self.rest.set_role(
                        change.guild_id, change.discord_id, change.role_id, change.grant
                    )
                except DiscordError as exc:
                    # A missing permission, an unknown role: the same call can never succeed.
                    # Fixed and saved again (PATCH discord_role_id), the project re-syncs
                    # everyone.
                    self.dropped += 1
                    log.error("role sync: %s; change %s dropped", exc, change.change_id)
                done.append(change.change_id)
                if time.monotonic() - since >= self.config.ack_every:
                    await self._ack(done)
                    done, since = [], time.monotonic()
        except (DiscordUnavailable, ApiError):
            await self._ack(done)  # what was applied before the failure
            raise
        await self._ack(done)
        return len(changes)

    async def _ack(self, change_ids: list[str]) -> None:
        if change_ids:
            self.applied += await self.client.role_ack(change_ids)
