"""Every error the HTTP layer answers, and the one mapping of store errors to statuses and
``detail`` messages (applied by the error middleware, handlers/middleware.py)."""

from collections.abc import Mapping

from store import errors


class ApiError(Exception):
    """An error with its HTTP status and ``detail`` message."""

    def __init__(
        self,
        status: int,
        detail: str,
        headers: Mapping[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.close = close  # the connection is closed after the answer


UNAVAILABLE = "Storage unavailable"

STORE_ERRORS: dict[type[errors.StoreError], tuple[int, str]] = {
    errors.ProjectNotFound: (404, "Project not found"),
    errors.KeyNotFound: (404, "Key not found"),
    errors.VendorNotFound: (404, "Vendor not found"),
    errors.EntryNotFound: (404, "Entry not found"),
    errors.AlreadyRedeemed: (400, "Key already redeemed"),
    errors.RedeemedKeyDelete: (400, "Cannot delete a redeemed key"),
    errors.DiscordNotLinked: (
        403,
        "Discord account must be linked before you can generate buyer keys.",
    ),
    errors.KeyBanned: (403, "Key is banned"),
    errors.NotCurrentKey: (
        403,
        "This API key has been rotated out: only the current key may rotate or revoke keys",
    ),
    errors.ResetCooldown: (429, "HWID reset is on cooldown"),  # + retry_after (middleware)
    errors.InvalidCursor: (422, "cursor: not a cursor of this listing"),
    errors.IntegrationNotFound: (404, "Integration not found"),
    errors.TooManyIntegrations: (409, "This project has the most integrations it may have"),
    errors.UnmappedProduct: (422, "product: no product of this order is mapped"),
    errors.OrderTooLarge: (422, "quantity: this order would make too many keys"),
    errors.NoWebhook: (
        409,
        "This project has no webhook URL with notifications on: nothing to send a test to",
    ),
    errors.StoreUnavailable: (503, UNAVAILABLE),
}


def body_too_large(limit: int) -> ApiError:
    # The contract groups oversized bodies with the other rejected bodies (400).
    return ApiError(400, f"body: request body too large (limit {limit} bytes)")


def malformed_json(reason: object) -> ApiError:
    return ApiError(400, f"Malformed JSON body: {reason}")


def body_timeout(seconds: float) -> ApiError:
    # 408 and the connection closed: a client that trickles its body holds nothing longer.
    return ApiError(408, f"Request body not received within {seconds:g} s", close=True)
