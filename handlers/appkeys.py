"""Typed application keys, and the settings the HTTP layer reads, all in one place.

``service`` builds the app and puts the full ``service.config.Settings`` (a subclass of
``HttpSettings``) under ``SETTINGS``; handlers see only the HTTP part, so nothing here
imports ``service``.
"""

import ipaddress
from dataclasses import dataclass

from aiohttp import web

from handlers.observability import Metrics
from handlers.signing import Signer
from store import Store

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """What the handlers read of the configuration (service/config.py parses it)."""

    max_body: int = 1024 * 1024
    max_source: int = 8 * 1024 * 1024
    public_url: str | None = None
    api_key_grace: int = 86400
    trusted_proxies: tuple[Network, ...] = ()
    # Networks webhooks may reach besides public addresses (handlers/targets.py).
    webhook_allow: tuple[Network, ...] = ()
    # Rate limits (0 = off). Windows in seconds.
    rate_window: int = 60
    rate_vendor: int = 60
    rate_keygen: int = 30
    rate_execute: int = 120
    brute_force_limit: int = 20
    brute_force_window: int = 600
    # KEY_INCORRECT verdicts of an IPv6 /48 that block it (None: 4 x brute_force_limit).
    brute_force_limit_48: int | None = None
    # Seconds a request body may take to arrive once its headers have (408 after).
    body_timeout: float = 10.0
    # Bearer token /metrics asks for (None: open, for a private listener).
    metrics_token: str | None = None
    # Seconds a role change handed out to a bot may stay unacknowledged before it is handed
    # out again (LEAF7_ROLE_LEASE; handlers/rolesync.py).
    role_lease: float = 60.0
    # Seconds a rotated-out verdict-signing key stays accepted (LEAF7_SIGNING_GRACE).
    signing_grace: int = 30 * 86400
    # Seconds an obfuscation job may run before it fails (LEAF7_OBFUSCATE_TIMEOUT).
    obfuscate_timeout: float = 60.0

    # Free keys (docs/free-keys.md): the providers' API bases (tests point them at local
    # fakes), the bound of each call to them (s), get-key sessions one client IP (or /64) may
    # start per hour (0: no limit).
    workink_api: str = "https://work.ink/_api/v2"
    linkvertise_api: str = "https://publisher.linkvertise.com/api/v1"
    turnstile_api: str = "https://challenges.cloudflare.com/turnstile/v0"
    free_keys_timeout: float = 5.0
    free_keys_sessions: int = 10

    # Sign in with Discord (handlers/dashboard/oauth.py; off without a client id): the OAuth2
    # application, its redirect URL (None: <public URL>/dashboard/oauth/discord/callback), the
    # base of Discord's endpoints (tests point it at a local fake), and whether a new Discord
    # user may create their own vendor account (LEAF7_SIGNUP=discord).
    discord_client_id: str | None = None
    discord_client_secret: str | None = None
    discord_redirect: str | None = None
    discord_oauth_base: str = "https://discord.com"
    discord_signup: bool = False

    @property
    def brute_force_limit_wide(self) -> int:
        """The IPv6 /48 failure limit in force (0: off)."""
        if self.brute_force_limit_48 is None:
            return 4 * self.brute_force_limit
        return self.brute_force_limit_48


SETTINGS = web.AppKey("settings", HttpSettings)
STORE = web.AppKey("store", Store)
METRICS = web.AppKey("metrics", Metrics)
SIGNER = web.AppKey("signer", Signer)


def store(request: web.Request) -> Store:
    return request.app[STORE]
