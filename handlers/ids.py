"""The ID patterns, each defined once: path and query checks, request bodies (msgspec), the
OpenAPI parameters and the CLI all use these.

Each pattern is anchored at the true end of the string: ``$`` alone also matches before a
trailing newline in Python's ``re`` (which msgspec uses), so ``(?!\\n)`` refuses one; in JSON
Schema's ECMA-262 dialect the lookahead is harmless, so the published pattern means the same.
"""

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class IdPattern:
    body: str  # the characters, unanchored
    max_length: int
    pattern: str = field(init=False)
    _regex: "re.Pattern[str]" = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pattern = f"^{self.body}(?!\\n)$"
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "_regex", re.compile(pattern))

    def valid(self, value: str) -> bool:
        return self._regex.match(value) is not None

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": self.pattern, "maxLength": self.max_length}


# A Discord user's id (a snowflake: digits).
DISCORD_ID = IdPattern("[0-9]{1,20}", 20)
# A project's id: a lowercase UUID, as the store makes them.
PROJECT_ID = IdPattern("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", 36)
# A licence key's id (ours are 32 letters and digits; keys imported from another system may
# also hold "-" and "_", see IMPORTED_KEY_ID).
KEY_ID = IdPattern("[A-Za-z0-9_-]{1,128}", 128)
# The id of a key brought in by an import (POST /api/vendor/keys/import, leaf7 vendor
# import-csv): another system's format, 8 to 64 letters, digits, "-" and "_".
IMPORTED_KEY_ID = IdPattern("[A-Za-z0-9_-]{8,64}", 64)
# A store integration's id (32 hex digits; the secret part of its hook URL).
INTEGRATION_ID = IdPattern("[0-9a-f]{32}", 32)
