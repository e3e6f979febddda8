"""Discord text made of values leaf7 does not write itself (a client's HWID, a store's order
id, an API's error message): shown as data, never read as Discord Markdown.

A client's HWID inside backticks could close the code span and follow it with a masked link
(``[Verify here](https://...)``) or a mention; escaped, it cannot. Webhook POSTs also send
``allowed_mentions`` with nothing to parse (``NO_MENTIONS``), so no text pings anyone.
"""

import re

# What Discord Markdown reads: the escape itself, emphasis, code, spoilers, quotes, headings,
# lists, masked links, <...> (mentions, channels, emoji, timestamps), @everyone, and the "://"
# and "/" of a bare link. A backslash before any punctuation shows the character as it is.
_SPECIAL = re.compile(r"([\\`*_~|>#\-\[\]()<@:/])")

# allowed_mentions: no @everyone, @here, role or user mention in the text pings anyone.
NO_MENTIONS: dict[str, list[str]] = {"parse": []}

_ELLIPSIS = "…"


def escape(text: str, limit: int = 4096) -> str:
    """``text`` with every Markdown character escaped, at most ``limit`` characters (cut with
    an ellipsis; escaping at most doubles a text, so the cut is made before it)."""
    out = _SPECIAL.sub(r"\\\1", text)
    if len(out) > limit:
        out = _SPECIAL.sub(r"\\\1", text[: (limit - 1) // 2]) + _ELLIPSIS
    return out


def code(text: str, limit: int = 1024) -> str:
    """``text`` as an inline code span (nothing is rendered inside one: no Markdown, links or
    mentions); a text with a backtick, which would end the span, is escaped text instead."""
    if not text or "`" in text:
        return escape(text, limit)
    if len(text) + 2 > limit:
        text = text[: limit - 3] + _ELLIPSIS
    return f"`{text}`"
