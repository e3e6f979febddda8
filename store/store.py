"""The store: every read and write leaf7 makes to Redis.

Conventions: times are epoch seconds from ``clock`` (injectable for tests); ownership is
checked inside the same Lua script that reads or writes, so a vendor can never act on a
project or key it does not own (it simply looks missing).
"""

import asyncio
import functools
import hashlib
import hmac
import secrets
import string
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from store import keys
from store.autopipe import DEFAULT_MAX_BATCH, Pipeline, auto_pipeline
from store.blacklist import Blacklist
from store.bounded import Deadlines, bounded
from store.durable import Durability
from store.errors import (
    AlreadyRedeemed,
    DiscordNotLinked,
    KeyBanned,
    KeyNotFound,
    ProjectNotFound,
    RedeemedKeyDelete,
    ResetCooldown,
    StoreError,
    VendorNotFound,
)
from store.models import (
    ActiveKey,
    BuyerKey,
    Event,
    Execution,
    Hosted,
    Limits,
    Project,
    RateLimit,
    Vendor,
    active_key_from_hash,
    buyer_key_from_hash,
    iso,
    pairs,
    project_from_hash,
)
from store.scripts import Script, Scripts
from store.webhooks import Webhooks

KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 32  # 32 * log2(62) = 190.5 bits of entropy
# Loader checks of one project per script call at most (see Store._submit).
DEFAULT_CHECK_BATCH = 8

_SCRIPT_ERRORS: dict[str, type[StoreError]] = {
    "L7:PROJECT_NOT_FOUND": ProjectNotFound,
    "L7:KEY_NOT_FOUND": KeyNotFound,
    "L7:ALREADY_REDEEMED": AlreadyRedeemed,
    "L7:REDEEMED": RedeemedKeyDelete,
    "L7:VENDOR_NOT_FOUND": VendorNotFound,
}


# A queued loader check: key_id, hwid, limit subject ("-": none), client IP, its future.
Check = tuple[str, str, str, str, "asyncio.Future[tuple[list[Any], Hosted | None]]"]


def new_key_id() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


def api_key_digest(secret: bytes, api_key: str) -> str:
    """The keyed hash an API key is stored and found by: HMAC-SHA256 with the server secret,
    so a copy of the database alone cannot be used to test guesses."""
    return hmac.new(secret, api_key.encode(), hashlib.sha256).hexdigest()


def new_api_key() -> str:
    return "l7_" + secrets.token_urlsafe(32)


def _script_error(exc: ResponseError) -> Exception:
    cls = _SCRIPT_ERRORS.get(str(exc).strip())
    return cls() if cls else exc


class Store:
    def __init__(
        self,
        redis: "Redis | RedisCluster",
        *,
        retention: int = 7 * 86400,
        clock: Callable[[], float] = time.time,
        secret: bytes | None = None,
        limits: Limits | None = None,
        timeout: float | None = 2.0,
        fsync: str = "waitaof",
        pipeline_batch: int = DEFAULT_MAX_BATCH,
        check_batch: int = DEFAULT_CHECK_BATCH,
    ) -> None:
        """``secret`` keys the API key hashes (without one, a random secret: keys made by
        another process cannot be verified); ``limits`` are the execution check's."""
        self.redis = redis
        self.secret = secret if secret is not None else secrets.token_bytes(32)
        self.limits = limits if limits is not None else Limits()
        self.pipe: Pipeline = auto_pipeline(redis, pipeline_batch)
        if check_batch < 1:
            raise ValueError("check_batch must be >= 1")
        # Loader checks per script call at most, and those queued in this tick, per project.
        self.check_batch = check_batch
        self._checks: dict[tuple[str, bool], list[Check]] = {}
        self._checks_scheduled = False
        # Every public operation is bounded by ``timeout`` seconds (store/bounded.py).
        self.timeout = timeout
        self.timeouts = 0
        self.pipe_aborts = 0
        self.deadlines = Deadlines(self)  # the same bound for the loader check, one timer
        self._probe: asyncio.Future[None] | None = None
        # Vendor writes that create or destroy value end with WAITAOF (store/durable.py).
        # (Not on Redis Cluster: WAITAOF names no key, so it cannot follow the write's slot.)
        cluster = isinstance(redis, RedisCluster)
        self.durability = Durability("none" if cluster else fsync, timeout)
        self.scripts = Scripts()
        self.retention = retention
        self.clock = clock
        # project_id -> what its loaders receive: checked against Redis on every run
        self._hosted: dict[str, Hosted] = {}
        self.hosted_cache_size = 1024
        self.blacklist = Blacklist(self)
        self.webhooks = Webhooks(self)

    def now(self) -> int:
        return int(self.clock())

    # ---- plumbing -------------------------------------------------------------------------

    def on_timeout(self) -> None:
        """An operation exceeded the bound: check the auto-pipeline's connection (once at a
        time). Called by ``bounded``."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_pipe())

    async def _probe_pipe(self) -> None:
        """If the auto-pipeline's connection does not answer a PING within the bound either,
        drop it so that the next call reconnects: a server that stopped answering, or was
        replaced behind the same address, would otherwise hold every loader check on it."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.pipe.call("PING")
        except TimeoutError:
            self.pipe_aborts += 1
            self.pipe.abort()
        except Exception:  # noqa: S110 - lost or refused: the pipeline reconnects by itself
            pass

    @bounded
    async def load_scripts(self) -> None:
        """Warms the script cache of every primary so the first requests do not pay for
        NOSCRIPT (a node that joins later, or restarts, costs one EVAL per script)."""
        await asyncio.gather(
            *(self.pipe.call_all("SCRIPT", "LOAD", s.source) for s in self.scripts.all())
        )

    @bounded
    async def ping(self) -> bool:
        """Every primary answers PING."""
        return all(await self.pipe.call_all("PING"))

    async def _script(
        self, script: Script, keys_: Sequence[str], args: Sequence[Any], *, durable: bool = False
    ) -> Any:
        """Runs a script in the automatic pipeline: one command, one shared round trip.
        ``durable``: on a pool connection followed by WAITAOF instead (store/durable.py)."""
        if durable and self.durability.enabled:
            return await self._durable_script(script, keys_, args)
        try:
            try:
                return await self.pipe.call("EVALSHA", script.sha, len(keys_), *keys_, *args)
            except NoScriptError:  # script cache flushed or server restarted: send the body
                return await self.pipe.call("EVAL", script.source, len(keys_), *keys_, *args)
        except ResponseError as exc:
            raise _script_error(exc) from None

    async def _durable_script(
        self, script: Script, keys_: Sequence[str], args: Sequence[Any]
    ) -> Any:
        for command in ("EVALSHA", "EVAL"):  # EVAL only after NOSCRIPT
            body = script.sha if command == "EVALSHA" else script.source
            result = (await self._write([(command, body, len(keys_), *keys_, *args)]))[0]
            if not isinstance(result, NoScriptError):
                break
        if isinstance(result, ResponseError):
            raise _script_error(result) from None
        return result

    async def _write(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Sends ``commands`` in one pipeline on one pool connection, followed by WAITAOF when
        durability is on; returns their replies (an error reply as its exception)."""
        pipe = self.redis.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        durable = self.durability.enabled
        if durable:
            pipe.execute_command(*self.durability.command())
        results = await pipe.execute(raise_on_error=False)
        if durable:
            self.durability.check(results.pop())
        return results

    async def _project_of(self, key_id: str) -> str:
        project_id: str | None = await self.pipe.call("GET", keys.key_ref(key_id))
        if project_id is None:
            raise KeyNotFound
        return project_id

    # ---- vendors --------------------------------------------------------------------------

    @bounded
    async def create_vendor(self, name: str, discord_id: str | None) -> tuple[str, str]:
        """Returns (vendor_id, api_key). The key is shown once; only its digest is kept."""
        vendor_id = str(uuid.uuid4())
        api_key = new_api_key()
        digest = api_key_digest(self.secret, api_key)
        fields = {"name": name, "created_at": self.now(), "api_key_hash": digest}
        if discord_id:
            fields["discord_id"] = discord_id
        results = await self._write(
            [
                ("HSET", keys.vendor(vendor_id), *_flatten(fields.items())),
                ("SET", keys.api_key(digest), vendor_id),
            ]
        )
        _raise_first(results)
        return vendor_id, api_key

    @bounded
    async def get_vendor(self, vendor_id: str) -> Vendor:
        h = pairs(await self.pipe.call("HGETALL", keys.vendor(vendor_id)))
        if not h:
            raise VendorNotFound
        return Vendor(
            vendor_id=vendor_id,
            name=h.get("name", ""),
            discord_id=h.get("discord_id") or None,
            created_at=iso(h.get("created_at")),
        )

    @bounded
    async def link_discord(self, vendor_id: str, discord_id: str) -> Vendor:
        # HSET XX-style: only an existing vendor may be linked (a typo must not create one).
        if not await self.pipe.call("EXISTS", keys.vendor(vendor_id)):
            raise VendorNotFound
        _raise_first(
            await self._write([("HSET", keys.vendor(vendor_id), "discord_id", discord_id)])
        )
        return await self.get_vendor(vendor_id)

    def api_key_digest(self, api_key: str) -> str:
        return api_key_digest(self.secret, api_key)

    @bounded
    async def authenticate(self, api_key: str) -> str | None:
        """API key -> vendor_id, or None when unknown (or past its grace period). The key is
        found by its keyed digest, so no stored secret is ever compared byte by byte."""
        vendor_id: str | None = await self.pipe.call(
            "GET", keys.api_key(self.api_key_digest(api_key))
        )
        return vendor_id

    async def authenticate_limited(
        self, api_key: str, limit: int, window: int
    ) -> tuple[str, RateLimit] | None:
        """Like ``authenticate``, and counts the request against the key's rate limit in the
        same script (one round trip); an unknown key writes nothing. None when unknown."""
        digest = self.api_key_digest(api_key)
        res = await self._script(
            self.scripts.authenticate,
            [keys.api_key(digest), keys.api_key_rate(digest)],
            [self.now(), window, limit],
        )
        if not res:
            return None
        vendor_id, allowed, remaining, reset, retry = res
        return vendor_id, RateLimit(
            bool(int(allowed)), limit, int(remaining), int(reset), int(retry)
        )

    async def rotate_api_key(self, vendor_id: str, grace: int) -> tuple[str, int]:
        """A new API key for the vendor; the previous current key keeps working for ``grace``
        seconds (its record gets that TTL; 0 removes it at once). Returns (new key, epoch
        second the previous key stops). Keys already in their grace period keep theirs."""
        api_key = new_api_key()
        digest = self.api_key_digest(api_key)
        # The new record exists before the vendor names it, so the new key works at once.
        await self.pipe.call("SET", keys.api_key(digest), vendor_id)
        try:
            old: str = await self._script(
                self.scripts.rotate_api_key, [keys.vendor(vendor_id)], [digest]
            )
        except VendorNotFound:
            await self.pipe.call("DEL", keys.api_key(digest))
            raise
        now = self.now()
        if old and old != digest:
            if grace > 0:
                # NX: a record already on its way out is not given a longer life.
                await self.pipe.call("EXPIRE", keys.api_key(old), grace, "NX")
            else:
                await self.pipe.call("DEL", keys.api_key(old))
        return api_key, now + grace

    # ---- rate limits ----------------------------------------------------------------------

    async def hit(self, key: str, limit: int, window: int) -> RateLimit:
        """One hit on a fixed-window limit kept in Redis (shared by every instance)."""
        allowed, remaining, reset, retry = await self._script(
            self.scripts.rate_limit, [key], [self.now(), window, limit]
        )
        return RateLimit(bool(int(allowed)), limit, int(remaining), int(reset), int(retry))

    async def hit_keygen(self, vendor_id: str, limit: int, window: int) -> RateLimit:
        return await self.hit(keys.keygen_rate(vendor_id), limit, window)

    # ---- projects -------------------------------------------------------------------------

    @bounded
    async def create_project(self, vendor_id: str, fields: dict[str, str]) -> Project:
        project_id = str(uuid.uuid4())
        h = {
            **fields,
            "vendor_id": vendor_id,
            "is_active": "1",
            "version": "0.0.0",
            "created_at": str(self.now()),
        }
        # Both writes go out in one batch (durable: with WAITAOF on one connection). A listing
        # that meets the id before its hash, or a hash whose owner differs, skips it.
        results = await self._write(
            [
                ("HSET", keys.project(project_id), *_flatten(h.items())),
                ("SADD", keys.vendor_projects(vendor_id), project_id),
            ]
        )
        _raise_first(results)
        await self.blacklist.mirror_into(vendor_id, project_id)
        project = project_from_hash(project_id, h)
        await self.webhooks.sync(project_id, project.webhook_url, project.notify_enabled)
        return project

    @bounded
    async def list_projects(self, vendor_id: str) -> list[Project]:
        ids = await self._project_ids(vendor_id)
        flats = await asyncio.gather(*(self.pipe.call("HGETALL", keys.project(p)) for p in ids))
        hashes = [pairs(flat) for flat in flats]
        return [
            project_from_hash(p, h)
            for p, h in zip(ids, hashes, strict=True)
            if h.get("vendor_id") == vendor_id
        ]

    async def _project_ids(self, vendor_id: str) -> list[str]:
        members: Iterable[str] = await self.pipe.call("SMEMBERS", keys.vendor_projects(vendor_id))
        return sorted(members)

    @bounded
    async def get_project(self, vendor_id: str, project_id: str) -> Project:
        h = pairs(await self.pipe.call("HGETALL", keys.project(project_id)))
        if not h or h.get("vendor_id") != vendor_id:
            raise ProjectNotFound
        return project_from_hash(project_id, h)

    @bounded
    async def update_project(
        self, vendor_id: str, project_id: str, changes: dict[str, str]
    ) -> Project:
        flat = await self._script(
            self.scripts.update_project,
            [keys.project(project_id), *keys.event_streams(project_id)],
            [vendor_id, *_flatten(changes.items())],
            durable=True,
        )
        project = project_from_hash(project_id, pairs(flat))
        if {"webhook_url", "notify_enabled"} & changes.keys():
            await self.webhooks.sync(project_id, project.webhook_url, project.notify_enabled)
        return project

    @bounded
    async def project_exists(self, project_id: str) -> bool:
        return bool(await self.pipe.call("EXISTS", keys.project(project_id)))

    @bounded
    async def set_source(
        self, vendor_id: str, project_id: str, source: str, version: str | None, macros: str
    ) -> Project:
        flat = await self._script(
            self.scripts.set_source,
            [
                keys.project(project_id),
                keys.project_source(project_id),
                *keys.event_streams(project_id),
            ],
            [vendor_id, source, version or "", macros],
            durable=True,
        )
        return project_from_hash(project_id, pairs(flat))

    @bounded
    async def delete_project(self, vendor_id: str, project_id: str) -> None:
        hour = self.now() // 3600
        hourly = [keys.hourly_executions(project_id, hour - i) for i in range(14)]
        key_ids: list[str] = await self._script(
            self.scripts.delete_project,
            keys.project_keys(project_id) + hourly,
            [vendor_id, keys.key_prefix(project_id), keys.discord_prefix(project_id)],
            durable=True,
        )
        # The refs live in other slots: one batch per node, after the data is gone (a ref
        # that outlives its key resolves to a project that no longer owns it: 404).
        await asyncio.gather(
            self.pipe.call("SREM", keys.vendor_projects(vendor_id), project_id),
            self.pipe.call("SREM", keys.webhook_projects(), project_id),
            *(self.pipe.call("DEL", keys.key_ref(key_id)) for key_id in key_ids),
        )

    # ---- buyer keys -----------------------------------------------------------------------

    @bounded
    async def generate_keys(
        self,
        vendor_id: str,
        project_id: str,
        *,
        amount: int,
        key_days: int,
        key_hours: int,
        key_minutes: int,
        note: str | None,
    ) -> list[BuyerKey]:
        discord_id = await self.pipe.call("HGET", keys.vendor(vendor_id), "discord_id")
        if not discord_id:
            raise DiscordNotLinked
        now = self.now()
        ids = [new_key_id() for _ in range(amount)]
        script = self.scripts.generate_keys
        key_names = [keys.project(project_id), keys.buyer_index(project_id)]
        key_names += [keys.key(project_id, i) for i in ids]
        key_names += keys.event_streams(project_id)
        args: list[str | int] = [vendor_id, now, key_days, key_hours, key_minutes]
        args += ["1" if note is not None else "0", note or "", *ids]
        if self.durability.enabled:
            # One round trip on one pool connection: the key -> project refs, the script that
            # checks ownership and writes the keys atomically, then WAITAOF: the keys are
            # fsynced before they are handed out (store/durable.py).
            commands: list[tuple[Any, ...]] = [("SET", keys.key_ref(i), project_id) for i in ids]
            commands.append(("EVALSHA", script.sha, len(key_names), *key_names, *args))
            result = (await self._write(commands))[-1]
            if isinstance(result, NoScriptError):
                eval_args = (script.source, len(key_names), *key_names, *args)
                result = (await self._write([("EVAL", *eval_args)]))[0]
            if isinstance(result, ResponseError):
                # Nothing was written by the script; drop the refs made for it.
                drops = [self.pipe.call("DEL", keys.key_ref(i)) for i in ids]
                await asyncio.gather(*drops, return_exceptions=True)
                raise _script_error(result)
            return self._buyer_keys(project_id, ids, now, key_days, key_hours, key_minutes, note)
        # One round trip: the key -> project refs are queued first, then the script that checks
        # ownership and writes the keys atomically, all in one auto-pipeline batch (on a
        # cluster the refs live in other slots: one write per node, all at once).
        refs = [self.pipe.call("SET", keys.key_ref(i), project_id) for i in ids]
        try:
            await self._script(script, key_names, args)
        except BaseException:
            # Nothing was written by the script; drop the refs made for it.
            await asyncio.gather(*refs, return_exceptions=True)
            drops = [self.pipe.call("DEL", keys.key_ref(i)) for i in ids]
            await asyncio.gather(*drops, return_exceptions=True)
            raise
        await asyncio.gather(*refs)
        return self._buyer_keys(project_id, ids, now, key_days, key_hours, key_minutes, note)

    @staticmethod
    def _buyer_keys(
        project_id: str,
        ids: list[str],
        now: int,
        key_days: int,
        key_hours: int,
        key_minutes: int,
        note: str | None,
    ) -> list[BuyerKey]:
        h = {"created_at": str(now), "key_days": str(key_days), "key_hours": str(key_hours)}
        h["key_minutes"] = str(key_minutes)
        if note is not None:
            h["note"] = note
        return [buyer_key_from_hash(project_id, i, h) for i in ids]

    async def _list(
        self, vendor_id: str, project_id: str | None, index: Callable[[str], str]
    ) -> list[tuple[str, str, dict[str, str]]]:
        """(project_id, key_id, hash) for every live member of ``index(project)``."""
        project_ids = [project_id] if project_id else await self._project_ids(vendor_id)
        script = self.scripts.list_keys
        results = await asyncio.gather(
            *(
                self._script(
                    script,
                    [
                        keys.project(p),
                        index(p),
                        keys.buyer_index(p),
                        keys.active_index(p),
                        keys.key_discords(p),
                    ],
                    [vendor_id, keys.key_prefix(p), keys.discord_prefix(p)],
                )
                for p in project_ids
            ),
            return_exceptions=True,
        )
        out: list[tuple[str, str, dict[str, str]]] = []
        for p, res in zip(project_ids, results, strict=True):
            if isinstance(res, ProjectNotFound):
                if project_id:
                    raise res
                continue  # deleted while we listed
            if isinstance(res, BaseException):
                raise res
            it = iter(res)
            out.extend((p, key_id, pairs(flat)) for key_id, flat in zip(it, it, strict=True))
        out.sort(key=lambda t: (t[2].get("created_at", ""), t[1]))
        return out

    @bounded
    async def list_buyer_keys(self, vendor_id: str, project_id: str | None) -> list[BuyerKey]:
        rows = await self._list(vendor_id, project_id, keys.buyer_index)
        return [buyer_key_from_hash(p, k, h) for p, k, h in rows]

    @bounded
    async def delete_buyer_key(self, vendor_id: str, key_id: str) -> None:
        project_id = await self._project_of(key_id)
        await self._script(
            self.scripts.delete_buyer_key,
            [
                keys.project(project_id),
                keys.key(project_id, key_id),
                keys.buyer_index(project_id),
                *keys.event_streams(project_id),
            ],
            [vendor_id, key_id],
            durable=True,
        )
        await self.pipe.call("DEL", keys.key_ref(key_id))

    # ---- redemption and active keys -------------------------------------------------------

    @bounded
    async def redeem(self, vendor_id: str, key_id: str, discord_id: str) -> ActiveKey:
        project_id = await self._project_of(key_id)
        flat = await self._script(
            self.scripts.redeem,
            [
                keys.project(project_id),
                keys.key(project_id, key_id),
                keys.active_index(project_id),
                keys.discord_index(project_id, discord_id),
                keys.key_discords(project_id),
                *keys.event_streams(project_id),
            ],
            [vendor_id, key_id, self.now(), discord_id, self.retention],
            durable=True,
        )
        h = pairs(flat)
        await self._expire_ref(key_id, h.get("expires_at", ""))
        return active_key_from_hash(project_id, key_id, h)

    async def _expire_ref(self, key_id: str, expires_at: str) -> None:
        """The key -> project ref lives exactly as long as the key hash it points at."""
        if expires_at:
            at_ms = (int(expires_at) + self.retention) * 1000
            await self.pipe.call("PEXPIREAT", keys.key_ref(key_id), at_ms)

    @bounded
    async def list_active_keys(
        self, vendor_id: str, project_id: str | None, discord_id: str | None
    ) -> list[ActiveKey]:
        did = discord_id

        def index(p: str) -> str:
            return keys.active_index(p) if did is None else keys.discord_index(p, did)

        rows = await self._list(vendor_id, project_id, index)
        return [active_key_from_hash(p, k, h) for p, k, h in rows if "redeemed_at" in h]

    async def _key_action(self, script: Script, vendor_id: str, key_id: str, *args: Any) -> Any:
        project_id = await self._project_of(key_id)
        return await self._script(
            script,
            [
                keys.project(project_id),
                keys.key(project_id, key_id),
                keys.hwid_bans(project_id),
                *keys.event_streams(project_id),
            ],
            [vendor_id, *args, key_id],
            durable=True,
        )

    @bounded
    async def ban(self, vendor_id: str, key_id: str) -> None:
        await self._key_action(self.scripts.ban, vendor_id, key_id)

    @bounded
    async def unban(self, vendor_id: str, key_id: str) -> None:
        await self._key_action(self.scripts.unban, vendor_id, key_id)

    @bounded
    async def reset_hwid(self, vendor_id: str, key_id: str) -> str | None:
        """Vendor reset (no cooldown). Returns the previous HWID."""
        old: str = await self._key_action(self.scripts.reset_hwid, vendor_id, key_id, self.now())
        return old or None

    @bounded
    async def set_hwid(self, vendor_id: str, key_id: str, hwid: str | None) -> str | None:
        """Returns the previous HWID."""
        old: str = await self._key_action(self.scripts.set_hwid, vendor_id, key_id, hwid or "")
        return old or None

    @bounded
    async def get_active_key(self, vendor_id: str, key_id: str) -> ActiveKey:
        project_id = await self._project_of(key_id)
        flat = await self._script(
            self.scripts.get_key,
            [keys.project(project_id), keys.key(project_id, key_id)],
            [vendor_id],
        )
        h = pairs(flat)
        if "redeemed_at" not in h:
            raise KeyNotFound
        return active_key_from_hash(project_id, key_id, h)

    @bounded
    async def get_buyer_key(self, vendor_id: str, key_id: str) -> BuyerKey:
        project_id = await self._project_of(key_id)
        flat = await self._script(
            self.scripts.get_key,
            [keys.project(project_id), keys.key(project_id, key_id)],
            [vendor_id],
        )
        return buyer_key_from_hash(project_id, key_id, pairs(flat))

    # ---- self-service (the Discord bot, on behalf of one user) ----------------------------

    @bounded
    async def self_reset_hwid(
        self, vendor_id: str, project_id: str, discord_id: str
    ) -> list[tuple[str, str]]:
        """Resets the HWIDs of a user's keys in a project, honouring the cooldown.
        Returns (key_id, previous HWID) for every key that was reset (may be none)."""
        res: list[Any] = await self._script(
            self.scripts.self_reset_hwid,
            [
                keys.project(project_id),
                keys.discord_index(project_id, discord_id),
                *keys.event_streams(project_id),
            ],
            [vendor_id, self.now(), keys.key_prefix(project_id)],
            durable=True,
        )
        status = res[0]
        if status == "NONE":
            raise KeyNotFound
        if status == "BANNED":
            raise KeyBanned
        if status == "COOLDOWN":
            raise ResetCooldown(int(res[1]))
        it = iter(res[1:])
        return list(zip(it, it, strict=True))

    # ---- bulk operations: SSCAN batches, one script per batch, bounded memory -------------

    BATCH = 500

    async def _batches(self, index: str) -> "AsyncIterator[list[str]]":
        cursor = 0
        while True:
            cursor, ids = await self.redis.sscan(index, cursor, count=self.BATCH)
            if ids:
                yield [str(i) for i in ids]
            if cursor == 0:
                return

    async def delete_unredeemed(self, vendor_id: str, project_id: str) -> int:
        await self.get_project(vendor_id, project_id)  # 404 before walking anything
        deleted = 0
        async for ids in self._batches(keys.buyer_index(project_id)):
            gone: list[str] = await self._script(
                self.scripts.delete_unredeemed,
                [
                    keys.project(project_id),
                    keys.buyer_index(project_id),
                    *keys.event_streams(project_id),
                ],
                [vendor_id, keys.key_prefix(project_id), *ids],
                durable=True,
            )
            if gone:
                await asyncio.gather(*(self.pipe.call("DEL", keys.key_ref(i)) for i in gone))
            deleted += len(gone)
        return deleted

    async def extend_keys(self, vendor_id: str, project_id: str, seconds: int) -> int:
        await self.get_project(vendor_id, project_id)
        extended = 0
        async for ids in self._batches(keys.active_index(project_id)):
            res: list[str] = await self._script(
                self.scripts.extend_keys,
                [keys.project(project_id), *keys.event_streams(project_id)],
                [vendor_id, keys.key_prefix(project_id), self.now(), seconds, self.retention, *ids],
                durable=True,
            )
            it = iter(res)
            pairs_ = list(zip(it, it, strict=True))
            # Each key's ref keeps the same TTL as the key itself.
            await asyncio.gather(*(self._expire_ref(i, exp) for i, exp in pairs_))
            extended += len(pairs_)
        return extended

    # ---- events and analytics -------------------------------------------------------------

    @bounded
    async def recent_events(self, vendor_id: str, limit: int) -> list[Event]:
        """The newest ``limit`` events across the vendor's projects, newest first."""
        project_ids = await self._project_ids(vendor_id)
        replies = await asyncio.gather(
            *(
                self.pipe.call("XREVRANGE", keys.events(p), "+", "-", "COUNT", limit)
                for p in project_ids
            )
        )
        rows: list[_EventRow] = []
        for p, entries in zip(project_ids, replies, strict=True):
            rows.extend(_EventRow(entry_id, p, pairs(fields)) for entry_id, fields in entries)

        def order(row: _EventRow) -> tuple[int, int]:
            ms, _, seq = row.stream_id.partition("-")
            return int(ms), int(seq or 0)

        rows.sort(key=order, reverse=True)
        return [
            Event(
                type=r.fields.get("type", ""),
                message=r.fields.get("message", ""),
                project_id=r.project_id,
                key_id=r.fields.get("key_id") or None,
                timestamp=iso(r.fields.get("ts")),
            )
            for r in rows[:limit]
        ]

    @bounded
    async def overview(self, vendor_id: str) -> dict[str, int]:
        project_ids = await self._project_ids(vendor_id)
        fields = asyncio.gather(
            *(
                self.pipe.call(
                    "HMGET",
                    keys.project(p),
                    "vendor_id",
                    "is_active",
                    "executions",
                    "ffa_executions",
                )
                for p in project_ids
            )
        )
        sizes = asyncio.gather(
            *(self.pipe.call("SCARD", keys.active_index(p)) for p in project_ids)
        )
        rows, counts = await asyncio.gather(fields, sizes)
        active_projects = total = active_keys = 0
        for (owner, is_active, execs, ffa), n in zip(rows, counts, strict=True):
            if owner != vendor_id:
                continue
            active_projects += is_active != "0"
            total += int(execs or 0) + int(ffa or 0)
            active_keys += int(n)
        return {
            "active_projects": active_projects,
            "total_executions": total,
            "active_keys": active_keys,
        }

    @bounded
    async def hourly_executions(
        self, vendor_id: str, project_id: str | None, hours: int = 12
    ) -> tuple[list[int], list[int]]:
        """(epoch hours, valid executions in each), oldest first, the current hour last."""
        if project_id is not None:
            await self.get_project(vendor_id, project_id)
            project_ids = [project_id]
        else:
            project_ids = await self._project_ids(vendor_id)
        now_hour = self.now() // 3600
        span = [now_hour - hours + 1 + i for i in range(hours)]
        # One MGET per project: its hourly counters share the project's slot.
        replies = await asyncio.gather(
            *(
                self.pipe.call("MGET", *(keys.hourly_executions(p, h) for h in span))
                for p in project_ids
            )
        )
        totals = [sum(int(r[i] or 0) for r in replies) for i in range(hours)]
        return span, totals

    # ---- the loader's execution check (hot path) ------------------------------------------

    async def execute(
        self, project_id: str, key_id: str, hwid: str, client: str | None = None, ip: str = ""
    ) -> Execution:
        """One execution check, in one round trip: checks of the same project that arrive
        together (the same event-loop tick) share one script call (``_submit``).

        What loaders receive (source, name, version, macros) is cached per project and
        revision; the script sends it only when this process's revision is stale, and every
        check reads the revision atomically, so a change is seen by the very next run on
        every instance. ``client`` (an IP address or IPv6 /64) is what the per-client limits
        count, inside the same script; None applies none. ``ip`` is matched against the
        vendor's blacklist. Bounded like every operation, by ``self.deadlines`` (one timer
        for all checks in flight) rather than ``@bounded`` (a timer per call)."""
        fut = self._submit(project_id, key_id, hwid, client, ip)
        self.deadlines.watch(fut)
        try:
            res, hosted = await fut
        except ResponseError as exc:
            raise _script_error(exc) from None
        if len(res) < 5:
            return _failed_execution(res)
        _, discord_id, total, expires, note, new, ffa, remaining, reset = res
        if new == "1" and expires:
            # First run redeemed the key: its key -> project ref expires with it. Off the
            # response path: the command rides in the next auto-pipeline batch.
            ref = asyncio.ensure_future(self._expire_ref(key_id, expires))
            ref.add_done_callback(_ignore_result)
        return Execution(
            code="KEY_VALID",
            hosted=hosted,
            discord_id=discord_id or None,
            total_executions=total,
            expires_at=int(expires) if expires else None,
            note=note,
            ffa=ffa == "1",
            remaining=None if remaining == "-1" else int(remaining),
            reset=None if remaining == "-1" else int(reset),
        )

    def _submit(
        self, project_id: str, key_id: str, hwid: str, client: str | None, ip: str
    ) -> "asyncio.Future[tuple[list[Any], Hosted | None]]":
        """Queues a check; its future gets (the script's result for it, what loaders receive).
        A project's checks queued in one tick go as one script call: at the tick's end, or as
        soon as ``check_batch`` of them are queued (so Valkey starts on them while the rest of
        the tick is still being handled). Checks with and without limits batch apart."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[list[Any], Hosted | None]] = loop.create_future()
        batch_key = (project_id, client is not None)
        batch = self._checks.get(batch_key)
        if batch is None:
            batch = self._checks[batch_key] = []
            if not self._checks_scheduled:
                self._checks_scheduled = True
                # call_soon runs after every callback already ready in this tick: all
                # handlers woken by the same poll have queued their checks by then.
                loop.call_soon(self._send_checks)
        batch.append((key_id, hwid, client or "-", ip, fut))
        if len(batch) >= self.check_batch:
            del self._checks[batch_key]
            self._send_safely(project_id, batch_key[1], batch, True)
        return fut

    def _send_checks(self) -> None:
        self._checks_scheduled = False
        batches, self._checks = self._checks, {}
        last = len(batches) - 1
        for i, ((project_id, limited), batch) in enumerate(batches.items()):
            # The tick's last batch writes everything queued: no reason to wait any longer.
            self._send_safely(project_id, limited, batch, i == last)

    def _send_safely(
        self, project_id: str, limited: bool, batch: list[Check], flush: bool, body: bool = False
    ) -> None:
        """``_send_batch``; should it ever raise, its checks fail with the error at once
        (rather than waiting for the deadline) and the tick's other batches still go."""
        try:
            self._send_batch(project_id, limited, batch, flush, body)
        except Exception as exc:
            _fail_checks(batch, exc)

    def _send_batch(
        self, project_id: str, limited: bool, batch: list[Check], flush: bool, body: bool = False
    ) -> None:
        """One script call for ``batch`` (EVAL with the script's body when ``body``)."""
        cached = self._hosted.get(project_id)
        now = self.now()
        lim = self.limits
        limit_args = (
            (lim.execute, lim.execute_window, lim.failures, lim.failure_window)
            if limited
            else (0, 1, 0, 1)
        )
        head, streams = keys.execute_fixed(project_id)
        check_keys: list[str] = []
        check_args: list[str] = []
        for key_id, hwid, subject, ip, _ in batch:
            check_keys += (keys.key(project_id, key_id), keys.client(project_id, subject))
            check_args += (hwid, key_id, ip)
        script = self.scripts.execute
        command = (
            "EVAL" if body else "EVALSHA", script.source if body else script.sha,
            10 + len(check_keys),
            *head, keys.hourly_executions(project_id, now // 3600), *check_keys, *streams,
            now, self.retention, cached.rev if cached else "", *limit_args, *check_args,
        )  # fmt: skip
        fut = self.pipe.command(command, flush)
        fut.add_done_callback(
            functools.partial(self._batch_done, project_id, limited, batch, cached, body)
        )

    def _batch_done(
        self,
        project_id: str,
        limited: bool,
        batch: list[Check],
        cached: Hosted | None,
        body: bool,
        fut: "asyncio.Future[Any]",
    ) -> None:
        """Hands each check its result (or the batch's error)."""
        if fut.cancelled():  # only when the pipeline is torn down: the checks go with it
            for *_, check in batch:
                check.cancel()
            return
        exc = fut.exception()
        if exc is not None:
            if isinstance(exc, NoScriptError) and not body:
                # Script cache flushed or server restarted: once more, with the script's body.
                pending = [c for c in batch if not c[4].done()]
                if pending:
                    self._send_safely(project_id, limited, pending, True, body=True)
            else:
                _fail_checks(batch, exc)
            return
        res: list[Any] = fut.result()
        if len(res) == 1:  # PROJECT_NOT_FOUND: the same for every check
            for *_, check in batch:
                if not check.done():
                    check.set_result((res, None))
            return
        rev, fresh = res[0], res[1]
        # The script omits what loaders receive when no check is valid or the cached revision
        # is current.
        hosted = cached
        if fresh is not None:
            source, name, version, macros = fresh
            hosted = Hosted(rev, source, name, version, tuple(macros.split(",")) if macros else ())
            self._cache_hosted(project_id, hosted)
        for (*_, check), result in zip(batch, res[2:], strict=True):
            if not check.done():
                check.set_result((result, hosted))

    def _cache_hosted(self, project_id: str, hosted: Hosted) -> None:
        cache = self._hosted
        cache.pop(project_id, None)
        cache[project_id] = hosted
        if len(cache) > self.hosted_cache_size:  # drop the least recently refreshed
            del cache[next(iter(cache))]


_OVERVIEW_FIELDS = ("vendor_id", "is_active", "executions", "ffa_executions")


class _EventRow(NamedTuple):
    stream_id: str
    project_id: str
    fields: dict[str, str]


def _failed_execution(res: list[Any]) -> Execution:
    code = res[0]
    if code == "RATE_LIMITED":
        _, kind, reset, retry = res
        return Execution(code=code, limited=kind, retry_after=int(retry), reset=int(reset))
    if len(res) == 1:
        return Execution(code=code)
    _, remaining, reset = res
    if remaining == "-1":
        return Execution(code=code)
    return Execution(code=code, remaining=int(remaining), reset=int(reset))


def _fail_checks(batch: list[Check], exc: BaseException) -> None:
    for *_, check in batch:
        if not check.done():
            check.set_exception(exc)


def _ignore_result(fut: "asyncio.Future[None]") -> None:
    if not fut.cancelled():
        fut.exception()


def _raise_first(results: Iterable[Any]) -> None:
    for result in results:
        if isinstance(result, Exception):
            raise result


def _flatten(items: Iterable[tuple[str, object]]) -> list[object]:
    return [x for kv in items for x in kv]
