"""Tiny exception classes; the HTTP layer maps each to a status and message
(handlers/errors.py, the one place that does)."""

from redis.exceptions import ResponseError


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class ProjectNotFound(StoreError):
    pass


class KeyNotFound(StoreError):
    pass


class VendorNotFound(StoreError):
    pass


class EntryNotFound(StoreError):
    """A blacklist entry."""


class AlreadyRedeemed(StoreError):
    pass


class RedeemedKeyDelete(StoreError):
    pass


class DiscordNotLinked(StoreError):
    pass


class NotCurrentKey(StoreError):
    """An API key in its grace period tried what only the current key may do."""


class InvalidCursor(StoreError):
    """A listing's ``cursor`` that this listing did not hand out."""


class StoreUnavailable(StoreError):
    pass


class KeyBanned(StoreError):
    pass


class IntegrationNotFound(StoreError):
    """A store integration (or its project) that is not there, or not the vendor's."""


class TooManyIntegrations(StoreError):
    pass


class UnmappedProduct(StoreError):
    """A paid store order whose products none of the integration's mappings name."""


class OrderTooLarge(StoreError):
    """A store order that would make more keys than one order may."""


class NoWebhook(StoreError):
    """A test notification for a project without a webhook URL, or with notifications off."""


class ResetCooldown(StoreError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


# What a Lua script's error reply (``redis.error_reply("L7:...")``) means.
_SCRIPT_ERRORS: dict[str, type[StoreError]] = {
    "L7:PROJECT_NOT_FOUND": ProjectNotFound,
    "L7:KEY_NOT_FOUND": KeyNotFound,
    "L7:ALREADY_REDEEMED": AlreadyRedeemed,
    "L7:REDEEMED": RedeemedKeyDelete,
    "L7:VENDOR_NOT_FOUND": VendorNotFound,
    "L7:NOT_CURRENT_KEY": NotCurrentKey,
    "L7:INTEGRATION_NOT_FOUND": IntegrationNotFound,
    "L7:TOO_MANY_INTEGRATIONS": TooManyIntegrations,
    "L7:NO_WEBHOOK": NoWebhook,
}


def script_error(exc: ResponseError) -> Exception:
    """The store error a script's error reply stands for (other replies stay as they are)."""
    cls = _SCRIPT_ERRORS.get(str(exc).strip())
    return cls() if cls else exc
