"""The vendor's API key (handlers/vendor.py)."""

import msgspec


class RotatedApiKey(msgspec.Struct):
    api_key: str
    previous_key_expires_at: str
