"""Typed application keys, all in one place."""

from aiohttp import web

from service.config import Settings
from store import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
