"""The store: one ``Core`` and the domain modules built on it, wired once.

Callers use the domains (``store.projects.create(...)``, ``store.licences.redeem(...)``,
``store.checks.execute(...)``); each domain reaches Redis only through the core's bounded
coroutines and the other domains' public methods.
"""

import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from store.analytics import Analytics
from store.autopipe import DEFAULT_MAX_BATCH
from store.blacklist import Blacklist
from store.checks import DEFAULT_CHECK_BATCH, Checks
from store.core import Core
from store.freekeys import FreeKeys
from store.integrations import Integrations
from store.licences import Licences
from store.models import Limits
from store.persistence import Persistence
from store.projects import Projects
from store.roles import Roles
from store.sessions import Sessions
from store.transfer import Transfer
from store.users import Users
from store.vendors import Vendors
from store.webhooks import Webhooks


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
        another process cannot be verified); ``limits`` are the execution check's;
        ``timeout`` bounds every Redis wait (seconds; past it, ``StoreUnavailable``)."""
        core = self.core = Core(
            redis,
            clock=clock,
            retention=retention,
            timeout=timeout,
            fsync=fsync,
            pipeline_batch=pipeline_batch,
        )
        self.vendors = Vendors(core, secret)
        self.blacklist = Blacklist(core, self.vendors)
        self.webhooks = Webhooks(core)
        self.projects = Projects(core, self.vendors, self.blacklist, self.webhooks)
        self.licences = Licences(core, self.vendors, self.projects)
        self.integrations = Integrations(core, self.vendors, self.projects)
        self.users = Users(core)
        self.analytics = Analytics(core, self.vendors, self.projects)
        self.checks = Checks(core, self.licences, limits=limits, check_batch=check_batch)
        self.transfer = Transfer(core, self.projects, self.blacklist)
        self.roles = Roles(core)
        self.sessions = Sessions(core)
        self.persistence = Persistence(core)
        self.freekeys = FreeKeys(core, self.projects)

    @property
    def redis(self) -> "Redis | RedisCluster":
        return self.core.redis

    def now(self) -> int:
        return self.core.now()

    async def close(self) -> None:
        await self.core.close()
