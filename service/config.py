"""Configuration, read from environment variables (documented in the README)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from store.client import is_cluster_url, parse_cluster_url


class ConfigError(ValueError):
    pass


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    expired_retention: int = 7 * 86400
    max_body: int = 1024 * 1024
    max_source: int = 8 * 1024 * 1024
    public_url: str | None = None
    redis_max_connections: int = 64
    workers: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        redis_url = env.get("REDIS_URL") or None
        if redis_url and is_cluster_url(redis_url):
            try:
                parse_cluster_url(redis_url)
            except ValueError as exc:
                raise ConfigError(f"REDIS_URL: {exc}") from None
        return cls(
            redis_url=redis_url,
            host=env.get("LEAF7_HOST") or "127.0.0.1",
            port=_int(env, "LEAF7_PORT", 8000),
            data_dir=Path(env.get("LEAF7_DATA_DIR") or "data"),
            expired_retention=_int(env, "LEAF7_EXPIRED_RETENTION", 7 * 86400),
            max_body=_int(env, "LEAF7_MAX_BODY", 1024 * 1024, minimum=1024),
            max_source=_int(env, "LEAF7_MAX_SOURCE", 8 * 1024 * 1024, minimum=1024),
            public_url=(env.get("LEAF7_PUBLIC_URL") or "").rstrip("/") or None,
            redis_max_connections=_int(env, "LEAF7_REDIS_MAX_CONNECTIONS", 64, minimum=2),
            workers=_int(env, "LEAF7_WORKERS", 1, minimum=1),
        )
