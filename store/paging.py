"""Listing positions: where a paged listing stopped, as an opaque ``cursor`` string.

A listing walks an index with SCAN (bounded work per step, whatever its size) and hands the
client the position to continue from. A position is a cursor of the listing's kind (keys of
one index kind, the blacklist, events) and holds, for a SCAN walk:

- ``project``: the project being walked (listings that span the vendor's projects walk them
  in the order of their ids; a project deleted meanwhile is skipped, a foreign one is never
  read: only the vendor's own project ids are walked);
- ``cur``: the SCAN cursor (``"0"``: from the start, ``"end"``: the walk is over);
- ``after``: ``""`` or an id; only ids greater than it are still to come. It is set when one
  step saw the whole index (a small set or hash comes back in one piece) and had to be cut:
  the next page walks it again from the start, past that id;
- ``left``: the ids of a cut step not handed out yet (a SCAN step may return a few more
  members than asked for); they come first on the next page.

Each id present from the first page to the last is handed out exactly once as long as the
index is not resized meanwhile (SCAN's own guarantee: at least once, duplicates only across a
rehash). Ids added or removed between pages may or may not appear.

A position only names things the listing reads anyway after its ownership checks, so a
cursor taken from another vendor or listing yields nothing of theirs: a malformed cursor, or
one of another kind or project, is ``InvalidCursor``.
"""

import base64
import re
from dataclasses import dataclass, field

import msgspec

from store.errors import InvalidCursor

MAX_LIMIT = 1000  # the most items of one page, and of one Redis call of a listing
MAX_CURSOR = 4096  # characters of a cursor string (a request line is at most 8190)

_HEX = "[0-9a-fA-F]"
_PROJECT = re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")
# Key ids (ours, and imported ones: letters, digits, "-", "_"; up to 128) and blacklist ids.
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_SCAN_CURSOR = re.compile(r"end|[0-9]{1,20}")
_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")

_Wire = tuple[int, str, str, str, str, list[str]]
_decode = msgspec.json.Decoder(_Wire).decode
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Position:
    kind: str
    project: str = ""
    cur: str = "0"
    after: str = ""
    left: tuple[str, ...] = field(default_factory=tuple)

    @property
    def done(self) -> bool:
        """The walk of the current index is over."""
        return self.cur == "end" and not self.left

    def encode(self) -> str:
        raw = _encode((1, self.kind, self.project, self.cur, self.after, list(self.left)))
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(cursor: str, kind: str, *, stream: bool = False) -> Position:
    """The position a cursor of listing ``kind`` holds; ``InvalidCursor`` for anything else.
    ``stream``: its ``cur`` is a stream entry id (the events listing) instead of a SCAN
    cursor."""
    if not 0 < len(cursor) <= MAX_CURSOR:
        raise InvalidCursor
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, got_kind, project, cur, after, left = _decode(raw)
    except (ValueError, msgspec.DecodeError):  # binascii.Error is a ValueError
        raise InvalidCursor from None
    pattern = _STREAM_ID if stream else _SCAN_CURSOR
    if (
        version != 1
        or got_kind != kind
        or (project and not _PROJECT.fullmatch(project))
        or not pattern.fullmatch(cur)
        or (after and not _ID.fullmatch(after))
        or len(left) > MAX_LIMIT
        or not all(_ID.fullmatch(i) for i in left)
    ):
        raise InvalidCursor
    return Position(kind, project, cur, after, tuple(left))
