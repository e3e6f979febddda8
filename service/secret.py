"""The server secret that keys the API key hashes (HMAC-SHA256).

``LEAF7_SECRET`` when set; otherwise ``<LEAF7_DATA_DIR>/secret``, generated on first start
(``secrets.token_hex(32)``, mode 0600) and reused by every later start and by the CLI's
vendor commands. Losing the secret invalidates every API key (vendors then need new ones).
"""

import logging
import os
import secrets
import time
from pathlib import Path

from handlers.signing import signing_secret_from
from service.config import ConfigError, Settings

SECRET_FILE = "secret"  # noqa: S105 - a file name

log = logging.getLogger(f"leaf7.{__name__}")


def load_secret(settings: Settings) -> bytes:
    if settings.secret:
        return settings.secret.encode()
    path = settings.data_dir / SECRET_FILE
    if settings.redis_url is not None:
        # Several instances on one Redis must share the secret, or each one's keys fail on
        # the others: with REDIS_URL, LEAF7_SECRET (or a shared data directory) is a must.
        log.warning(
            "LEAF7_SECRET is unset: API keys are hashed with %s; every instance that uses "
            "this Redis needs the same secret",
            path.resolve(),
        )
    return _read_or_create(path)


def signing_secret(settings: Settings, server_secret: bytes) -> bytes:
    """What the verdict-signing keys are derived from (handlers/signing.py):
    ``LEAF7_SIGNING_SECRET`` when set, else an HMAC of the server secret (so a default
    install signs, and instances that share LEAF7_SECRET sign with the same keys). Changing
    it changes every project's keys: loaders that embed the old public keys refuse answers."""
    if settings.signing_secret:
        return settings.signing_secret.encode()
    return signing_secret_from(server_secret)


def _read_or_create(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two processes starting at once exactly one writes the file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
    for _ in range(100):  # the other process may still be writing it
        value = path.read_text("ascii").strip()
        if value:
            return value.encode()
        time.sleep(0.01)
    raise ConfigError(f"{path} is empty: set LEAF7_SECRET or remove the file")
