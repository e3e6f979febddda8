"""The Redis data layer of leaf7. It never imports aiohttp."""

from store.errors import (
    AlreadyRedeemed,
    DiscordNotLinked,
    KeyNotFound,
    ProjectNotFound,
    RedeemedKeyDelete,
    StoreError,
    StoreUnavailable,
    VendorNotFound,
)
from store.store import Store

__all__ = [
    "AlreadyRedeemed",
    "DiscordNotLinked",
    "KeyNotFound",
    "ProjectNotFound",
    "RedeemedKeyDelete",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "VendorNotFound",
]
