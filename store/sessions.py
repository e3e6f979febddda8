"""Dashboard sessions: who signed in to the dashboard, with which API key, until when.

The browser holds a random 256-bit session id; Redis holds the session under the SHA-256 of
that id (a copy of the database names no usable session). A session lives ``idle`` seconds
past its last use and never past ``lifetime`` seconds after sign-in. It remembers the digest
of the API key it was opened with: a session is only good while that key is still the
vendor's current key, so rotating (or revoking) the key ends every session opened with it,
with no list to walk.
"""

import asyncio
import hashlib
import hmac
import secrets
from typing import NamedTuple

from store import keyspace
from store.core import Core, raise_first
from store.models import RateLimit

# Sessions one ``delete_all`` step ends (ZRANGE + DEL of that many, repeated until none).
_END_BATCH = 500


class Session(NamedTuple):
    """A live session: its vendor, the digest of its API key and its CSRF token."""

    vendor_id: str
    digest: str
    csrf: str


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def create(
        self, vendor_id: str, digest: str, idle: int, lifetime: int
    ) -> tuple[str, Session]:
        """A new session for the vendor signed in with the API key of ``digest``: (the
        session id for the cookie, the session)."""
        session_id = secrets.token_urlsafe(32)  # 256 bits
        sd = _digest(session_id)
        now = self.core.now()
        ends = now + lifetime
        csrf = secrets.token_urlsafe(32)
        index = keyspace.vendor_sessions(vendor_id)
        results = await self.core.write(
            [
                (
                    "HSET",
                    keyspace.session(sd),
                    *("vendor_id", vendor_id, "digest", digest, "csrf", csrf, "ends", ends),
                ),
                ("EXPIRE", keyspace.session(sd), min(idle, lifetime)),
                ("ZREMRANGEBYSCORE", index, "-inf", now),
                ("ZADD", index, ends, sd),
                ("EXPIRE", index, lifetime, "GT"),
                ("EXPIRE", index, lifetime, "NX"),
            ]
        )
        raise_first(results)
        return session_id, Session(vendor_id, digest, csrf)

    async def resume(self, session_id: str, idle: int) -> Session | None:
        """The live session of this id, its idle timeout renewed; None when it is unknown,
        past its end, or its API key is no longer the vendor's current key."""
        if not 0 < len(session_id) <= 128:
            return None
        found = await self.core.script(
            self.core.scripts.session_resume,
            [keyspace.session(_digest(session_id))],
            [self.core.now(), idle],
        )
        if not found:
            return None
        vendor_id, digest, csrf = (str(x) for x in found)
        current = await self.core.call("HGET", keyspace.vendor(vendor_id), "api_key_hash")
        if current is None or not hmac.compare_digest(str(current), digest):
            await self.delete(session_id)
            return None
        return Session(vendor_id, digest, csrf)

    async def rebind(self, session_id: str, digest: str) -> bool:
        """The session now stands for the API key of ``digest`` (the vendor rotated the key
        from this session); False when the session is gone."""
        return bool(await self._update(session_id, "digest", digest))

    async def set_batch(self, session_id: str, batch: str) -> bool:
        """Keeps ``batch`` (the last generated keys, encoded by the caller) with the session
        for its downloads."""
        return bool(await self._update(session_id, "batch", batch))

    async def batch(self, session_id: str) -> str | None:
        """The last batch ``set_batch`` kept, if any."""
        found: str | None = await self.core.call(
            "HGET", keyspace.session(_digest(session_id)), "batch"
        )
        return found

    async def _update(self, session_id: str, *fields: str) -> int:
        result: int = await self.core.script(
            self.core.scripts.session_update, [keyspace.session(_digest(session_id))], fields
        )
        return result

    async def delete(self, session_id: str) -> None:
        """Signs the session out."""
        await self.core.call("DEL", keyspace.session(_digest(session_id)))

    async def delete_all(self, vendor_id: str) -> int:
        """Signs every session of the vendor out; returns how many were listed."""
        index = keyspace.vendor_sessions(vendor_id)
        ended = 0
        while True:
            digests: list[str] = await self.core.call("ZRANGE", index, 0, _END_BATCH - 1)
            if not digests:
                return ended
            # Sessions live in their own slots (their digest is the hash tag).
            await asyncio.gather(
                *(self.core.call("DEL", keyspace.session(str(d))) for d in digests)
            )
            await self.core.call("ZREM", index, *digests)
            ended += len(digests)

    async def start_oauth(self, state: str, record: str, ttl: int) -> None:
        """Keeps one "Sign in with Discord" in flight (``record``: the caller's, with its PKCE
        verifier) under its OAuth2 ``state`` for ``ttl`` seconds."""
        await self.core.call("SET", keyspace.oauth_state(_digest(state)), record, "EX", ttl)

    async def take_oauth(self, state: str) -> str | None:
        """The record of ``state``, once: taken and deleted in one command (a replayed or
        forged ``state`` finds nothing)."""
        if not 0 < len(state) <= 128:
            return None
        found: str | None = await self.core.call("GETDEL", keyspace.oauth_state(_digest(state)))
        return found

    async def hit_signin(self, subject: str, limit: int, window: int) -> RateLimit:
        """One sign-in attempt of a client IP (or IPv6 /64) against its fixed window."""
        allowed, remaining, reset, retry = await self.core.script(
            self.core.scripts.rate_limit,
            [keyspace.signin_rate(subject)],
            [self.core.now(), window, limit],
        )
        return RateLimit(bool(int(allowed)), limit, int(remaining), int(reset), int(retry))
