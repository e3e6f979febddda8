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
    # Rate limits (0 = off). Windows in seconds.
    rate_window: int = 60
    rate_vendor: int = 60
    rate_keygen: int = 30
    rate_execute: int = 120
    brute_force_limit: int = 20
    brute_force_window: int = 600


SETTINGS = web.AppKey("settings", HttpSettings)
STORE = web.AppKey("store", Store)
METRICS = web.AppKey("metrics", Metrics)
