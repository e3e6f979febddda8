"""Leaks (handlers/leaks.py, docs/loader-security.md#leaks)."""

import msgspec


class LeakMatch(msgspec.Struct):
    """The key a leaked copy was served to (docs/loader-security.md#leaks): ``confidence`` is
    the share of the mark's bits read in the text that match the key's (``observed_bits`` of
    64 read); ``false_match`` bounds the chance that a text not served to the key matches
    any of the vendor's keys this well."""

    key_id: str
    project_id: str
    discord_id: str | None
    hwid: str | None
    confidence: float
    observed_bits: int
    false_match: float
