"""Vendors and their API keys (and the vendor-level rate limits)."""

import asyncio
import hashlib
import hmac
import secrets
import uuid
from typing import NamedTuple

from store import keyspace
from store.core import Core, flatten, raise_first
from store.errors import StoreError, VendorNotFound
from store.models import RateLimit, Vendor, iso, pairs


class Caller(NamedTuple):
    """Who an authenticated request comes from: the vendor, the digest of the API key it
    used, and that key's rate-limit window."""

    vendor_id: str
    digest: str
    rate: RateLimit


def api_key_digest(secret: bytes, api_key: str) -> str:
    """The keyed hash an API key is stored and found by: HMAC-SHA256 with the server secret,
    so a copy of the database alone cannot be used to test guesses."""
    return hmac.new(secret, api_key.encode(), hashlib.sha256).hexdigest()


def new_api_key() -> str:
    return "l7_" + secrets.token_urlsafe(32)


class Vendors:
    def __init__(self, core: Core, secret: bytes | None = None) -> None:
        """``secret`` keys the API key hashes (without one, a random secret: keys made by
        another process cannot be verified)."""
        self.core = core
        self.secret = secret if secret is not None else secrets.token_bytes(32)

    def api_key_digest(self, api_key: str) -> str:
        return api_key_digest(self.secret, api_key)

    async def create(
        self, name: str, discord_id: str | None, vendor_id: str | None = None
    ) -> tuple[str, str]:
        """Returns (vendor_id, api_key). The key is shown once; only its digest is kept.
        ``vendor_id``: one already reserved (a Discord sign-up claims the account first)."""
        vendor_id = vendor_id or str(uuid.uuid4())
        api_key = new_api_key()
        digest = self.api_key_digest(api_key)
        fields = {"name": name, "created_at": self.core.now(), "api_key_hash": digest}
        if discord_id:
            fields["discord_id"] = discord_id
        results = await self.core.write(
            [
                ("HSET", keyspace.vendor(vendor_id), *flatten(fields.items())),
                ("SET", keyspace.api_key(digest), vendor_id),
            ]
        )
        raise_first(results)
        if discord_id:
            await self._claim_record(vendor_id, discord_id)
        return vendor_id, api_key

    async def get(self, vendor_id: str) -> Vendor:
        h = pairs(await self.core.call("HGETALL", keyspace.vendor(vendor_id)))
        if not h:
            raise VendorNotFound
        return Vendor(
            vendor_id=vendor_id,
            name=h.get("name", ""),
            discord_id=h.get("discord_id") or None,
            created_at=iso(h.get("created_at")),
        )

    async def exist(self, budget: int = 10_000) -> bool:
        """Whether any vendor exists: a SCAN for vendor keys that stops at the first one. A
        store of more than ``budget`` keys without a vendor key in them is taken to have
        vendors (its keys are some vendor's data): bounded work at start-up."""
        cursor, seen = 0, 0
        while True:
            cursor, found = await self.core.call(
                "SCAN", cursor, "MATCH", keyspace.VENDOR_KEYS, "COUNT", 1000
            )
            if found:
                return True
            seen += 1000
            if int(cursor) == 0:
                return False
            if seen >= budget:
                return True

    async def discord_id(self, vendor_id: str) -> str | None:
        """The Discord account linked to the vendor, if any."""
        found: str | None = await self.core.call("HGET", keyspace.vendor(vendor_id), "discord_id")
        return found or None

    async def link_discord(self, vendor_id: str, discord_id: str) -> Vendor:
        # HSET XX-style: only an existing vendor may be linked (a typo must not create one).
        if not await self.core.call("EXISTS", keyspace.vendor(vendor_id)):
            raise VendorNotFound
        raise_first(
            await self.core.write([("HSET", keyspace.vendor(vendor_id), "discord_id", discord_id)])
        )
        # The operator's link: Discord sign-in too, unless another vendor holds the account.
        await self._claim_record(vendor_id, discord_id)
        return await self.get(vendor_id)

    # ---- Sign in with Discord: the account -> vendor record (keyspace.discord_vendor) -----

    async def by_discord(self, discord_id: str) -> str | None:
        """The vendor a Discord account signs in to: its record, while that vendor's linked
        account is still this one (a vendor linked to another account since lost it)."""
        holder: str | None = await self.core.call("GET", keyspace.discord_vendor(discord_id))
        if holder and await self.discord_id(holder) == discord_id:
            return holder
        return None

    async def _claim_record(self, vendor_id: str, discord_id: str) -> str:
        """Writes the account's record for ``vendor_id`` unless another vendor holds the
        account; returns the vendor the record names afterwards."""
        key = keyspace.discord_vendor(discord_id)
        holder: str | None = await self.core.call("GET", key)
        stale = ""
        if holder and holder != vendor_id and await self.discord_id(holder) != discord_id:
            stale = holder  # that vendor was linked to another account since
        named: str = await self.core.script(
            self.core.scripts.discord_claim, [key], [vendor_id, stale]
        )
        return str(named)

    async def reserve_discord(self, discord_id: str) -> str:
        """A new vendor id holding the account's record (a Discord sign-up: the vendor is
        created next, under this id); or the vendor that already holds it."""
        return await self._claim_record(str(uuid.uuid4()), discord_id)

    async def claim_discord(self, vendor_id: str, discord_id: str) -> str | None:
        """Links the account to the vendor (it signs in with it, and may generate buyer keys);
        None when done, else the other vendor that holds the account (nothing changed)."""
        if not await self.core.call("EXISTS", keyspace.vendor(vendor_id)):
            raise VendorNotFound
        named = await self._claim_record(vendor_id, discord_id)
        if named != vendor_id:
            return named
        raise_first(
            await self.core.write([("HSET", keyspace.vendor(vendor_id), "discord_id", discord_id)])
        )
        return None

    async def key_digest(self, vendor_id: str) -> str | None:
        """The digest of the vendor's current API key (what a dashboard session is bound to)."""
        found: str | None = await self.core.call("HGET", keyspace.vendor(vendor_id), "api_key_hash")
        return found

    async def project_ids(self, vendor_id: str) -> list[str]:
        """The vendor's project ids, sorted."""
        members: list[str] = await self.core.call("SMEMBERS", keyspace.vendor_projects(vendor_id))
        return sorted(members)

    async def authenticate(self, api_key: str) -> str | None:
        """API key -> vendor_id, or None when unknown (or past its grace period). The key is
        found by its keyed digest, so no stored secret is ever compared byte by byte."""
        vendor_id: str | None = await self.core.call(
            "GET", keyspace.api_key(self.api_key_digest(api_key))
        )
        return vendor_id

    async def authenticate_limited(self, api_key: str, limit: int, window: int) -> Caller | None:
        """Like ``authenticate``, and counts the request against the key's rate limit in the
        same script (one round trip); an unknown key writes nothing. None when unknown."""
        digest = self.api_key_digest(api_key)
        res = await self.core.script(
            self.core.scripts.authenticate,
            [keyspace.api_key(digest), keyspace.api_key_rate(digest)],
            [self.core.now(), window, limit],
        )
        if not res:
            return None
        vendor_id, allowed, remaining, reset, retry = res
        rate = RateLimit(bool(int(allowed)), limit, int(remaining), int(reset), int(retry))
        return Caller(vendor_id, digest, rate)

    async def rotate_api_key(self, vendor_id: str, grace: int, caller: str = "") -> tuple[str, int]:
        """A new API key for the vendor; the previous current key keeps working for ``grace``
        seconds (its record gets that TTL; 0 removes it at once). Returns (new key, epoch
        second the previous key stops). Keys already in their grace period keep theirs.
        ``caller``: the digest of the key asking, which must be the current one
        (``NotCurrentKey`` otherwise); '' for the operator."""
        api_key = new_api_key()
        digest = self.api_key_digest(api_key)
        call = self.core.call
        # The new record exists before the vendor names it, so the new key works at once.
        await call("SET", keyspace.api_key(digest), vendor_id)
        try:
            old: str = await self.core.script(
                self.core.scripts.rotate_api_key,
                [keyspace.vendor(vendor_id), keyspace.vendor_previous_keys(vendor_id)],
                [digest, caller, grace],
            )
        except StoreError:
            await call("DEL", keyspace.api_key(digest))
            raise
        now = self.core.now()
        if old and old != digest:
            if grace > 0:
                # NX: a record already on its way out is not given a longer life.
                await call("EXPIRE", keyspace.api_key(old), grace, "NX")
            else:
                await call("DEL", keyspace.api_key(old))
        return api_key, now + grace

    async def revoke_previous(self, vendor_id: str, caller: str = "") -> int:
        """Ends every previous API key of the vendor now, grace periods included; returns how
        many were still listed. ``caller`` as for ``rotate_api_key``."""
        previous: list[str] = await self.core.script(
            self.core.scripts.revoke_previous,
            [keyspace.vendor(vendor_id), keyspace.vendor_previous_keys(vendor_id)],
            [caller],
        )
        # The records live in their own slots (the digest is their hash tag).
        await asyncio.gather(*(self.core.call("DEL", keyspace.api_key(d)) for d in previous))
        return len(previous)

    async def hit_keygen(self, vendor_id: str, limit: int, window: int) -> RateLimit:
        """One hit on the vendor's key-generation limit (a fixed window kept in Redis, shared
        by every instance)."""
        allowed, remaining, reset, retry = await self.core.script(
            self.core.scripts.rate_limit,
            [keyspace.keygen_rate(vendor_id)],
            [self.core.now(), window, limit],
        )
        return RateLimit(bool(int(allowed)), limit, int(remaining), int(reset), int(retry))
