"""The Redis data layer of leaf7. It never imports aiohttp."""

from store.errors import (
    AlreadyRedeemed,
    DiscordNotLinked,
    EntryNotFound,
    KeyBanned,
    KeyNotFound,
    NotCurrentKey,
    ProjectNotFound,
    RedeemedKeyDelete,
    ResetCooldown,
    StoreError,
    StoreUnavailable,
    VendorNotFound,
)
from store.store import Store

__all__ = [
    "AlreadyRedeemed",
    "DiscordNotLinked",
    "EntryNotFound",
    "KeyBanned",
    "KeyNotFound",
    "NotCurrentKey",
    "ProjectNotFound",
    "RedeemedKeyDelete",
    "ResetCooldown",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "VendorNotFound",
]
