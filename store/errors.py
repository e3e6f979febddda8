"""Tiny exception classes; the HTTP layer maps each to a status and message."""


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class ProjectNotFound(StoreError):
    pass


class KeyNotFound(StoreError):
    pass


class VendorNotFound(StoreError):
    pass


class AlreadyRedeemed(StoreError):
    pass


class RedeemedKeyDelete(StoreError):
    pass


class DiscordNotLinked(StoreError):
    pass


class StoreUnavailable(StoreError):
    pass


class KeyBanned(StoreError):
    pass


class ResetCooldown(StoreError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after
