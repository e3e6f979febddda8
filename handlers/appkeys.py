"""Typed application keys, and the settings the HTTP layer reads, all in one place.

``service`` builds the app and puts the full ``service.config.Settings`` (a subclass of
``HttpSettings``) under ``SETTINGS``; handlers see only the HTTP part, so nothing here
imports ``service``.
"""

import ipaddress
from dataclasses import dataclass

from aiohttp import web

from handlers.observability import Metrics
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

    @property
    def brute_force_limit_wide(self) -> int:
        """The IPv6 /48 failure limit in force (0: off)."""
        if self.brute_force_limit_48 is None:
            return 4 * self.brute_force_limit
        return self.brute_force_limit_48


SETTINGS = web.AppKey("settings", HttpSettings)
STORE = web.AppKey("store", Store)
METRICS = web.AppKey("metrics", Metrics)
