"""Configuration, read from environment variables (each documented in docs/configuration.md)."""

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.appkeys import HttpSettings, Network
from store.client import is_cluster_url, is_sentinel_url, parse_cluster_url, parse_sentinel_url


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


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    """A comma-separated list of IP addresses and CIDR networks."""
    out: list[Network] = []
    for item in (env.get(name) or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not an IP address or CIDR network") from None
    return tuple(out)


def _float(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum or value == float("inf"):  # also refuses nan
        raise ConfigError(f"{name} must be a finite number >= {minimum}, got {raw}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1/0 (true/false), got {raw!r}")


def _base(env: Mapping[str, str], name: str, default: str) -> str:
    """An http(s) URL without its trailing slash (a provider's API base)."""
    value = (env.get(name) or default).strip().rstrip("/")
    if not value.startswith(("https://", "http://")):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _discord(env: Mapping[str, str]) -> dict[str, Any]:
    """Sign in with Discord: both halves of the OAuth2 application or neither; a sign-up
    (LEAF7_SIGNUP=discord) needs them."""
    client_id = (env.get("LEAF7_DISCORD_CLIENT_ID") or "").strip() or None
    secret = (env.get("LEAF7_DISCORD_CLIENT_SECRET") or "").strip() or None
    if (client_id is None) != (secret is None):
        raise ConfigError("LEAF7_DISCORD_CLIENT_ID and LEAF7_DISCORD_CLIENT_SECRET go together")
    signup = _choice(env, "LEAF7_SIGNUP", "off", ("off", "discord")) == "discord"
    if signup and client_id is None:
        raise ConfigError("LEAF7_SIGNUP=discord needs LEAF7_DISCORD_CLIENT_ID and _SECRET")
    redirect = (env.get("LEAF7_DISCORD_REDIRECT") or "").strip() or None
    if redirect is not None and not redirect.startswith(("https://", "http://")):
        raise ConfigError(f"LEAF7_DISCORD_REDIRECT must be an http(s) URL, got {redirect!r}")
    return {
        "discord_client_id": client_id,
        "discord_client_secret": secret,
        "discord_redirect": redirect,
        "discord_oauth_base": _base(env, "LEAF7_DISCORD_OAUTH_BASE", "https://discord.com"),
        "discord_signup": signup,
    }


FSYNC_MODES = ("waitaof", "none")
# MiB of AOF growth between the embedded Valkey's rewrites (LEAF7_AOF_REWRITE_MIN_MB).
AOF_REWRITE_MIN_MB = 1024


@dataclass(frozen=True, slots=True)
class Settings(HttpSettings):
    """Every setting; the HTTP layer's own are those of ``HttpSettings``."""

    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    expired_retention: int = 7 * 86400
    redis_max_connections: int = 64
    webhooks: bool = True
    # The webhook deliverer (service/webhooks.py; the allowed targets: HttpSettings).
    webhook_poll: float = 1.0
    webhook_backoff: float = 10.0
    webhook_max_attempts: int = 10
    # Keyed hashes of API keys: LEAF7_SECRET, else <data_dir>/secret (see service/secret.py).
    secret: str | None = None
    # Derives the verdict-signing keys: LEAF7_SIGNING_SECRET, else derived from the secret
    # above (see service/secret.py).
    signing_secret: str | None = None
    workers: int = 1
    # Upper bound of every storage wait of a request (connect, command, fsync): past it, 503.
    redis_timeout: float = 2.0
    # Commands per write on the auto-pipeline's connection (store/autopipe.py).
    pipeline_batch: int = 4
    # Loader checks of one project per script call (store/store.py Store._submit).
    check_batch: int = 8
    # waitaof: vendor writes are acknowledged only after the server fsynced them (WAITAOF).
    fsync: str = "waitaof"
    access_log: bool = True
    # Open connections per client IP at most (trusted proxies: no cap).
    max_conn_per_ip: int = 256
    # Seconds in-flight requests get to finish after SIGTERM before connections are closed.
    shutdown_timeout: float = 5.0
    # Replicas that must acknowledge a durable vendor write too (store/durable.py).
    min_replicas_ack: int = 0
    # The embedded Valkey rewrites its AOF once the incremental part reaches this size (MiB):
    # each rewrite stalls its main thread on fsyncs (see service/embedded.py).
    aof_rewrite_min_mb: int = AOF_REWRITE_MIN_MB
    # ...and earlier, once it grew this much (MiB; 0: never), while the server is quiet: at
    # most this many operations per second (service/storage.py rewrite_when_quiet).
    aof_quiet_rewrite_mb: int = 64
    aof_quiet_ops: int = 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        redis_url = env.get("REDIS_URL") or None
        if redis_url and is_cluster_url(redis_url):
            try:
                parse_cluster_url(redis_url)
            except ValueError as exc:
                raise ConfigError(f"REDIS_URL: {exc}") from None
        if redis_url and is_sentinel_url(redis_url):
            try:
                parse_sentinel_url(redis_url)
            except ValueError as exc:
                raise ConfigError(f"REDIS_URL: {exc}") from None
        min_replicas_ack = _int(env, "LEAF7_MIN_REPLICAS_ACK", 0)
        if min_replicas_ack and not redis_url:
            raise ConfigError("LEAF7_MIN_REPLICAS_ACK needs REDIS_URL (no embedded replicas)")
        if min_replicas_ack and redis_url and is_cluster_url(redis_url):
            raise ConfigError("LEAF7_MIN_REPLICAS_ACK is not supported on Redis Cluster")
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
            webhooks=env.get("LEAF7_WEBHOOKS", "1") not in ("0", "false", "no"),
            webhook_poll=_float(env, "LEAF7_WEBHOOK_POLL", 1.0, minimum=0.01),
            webhook_backoff=_float(env, "LEAF7_WEBHOOK_BACKOFF", 10.0, minimum=0.01),
            webhook_max_attempts=_int(env, "LEAF7_WEBHOOK_MAX_ATTEMPTS", 10, minimum=1),
            webhook_allow=_networks(env, "LEAF7_WEBHOOK_ALLOW"),
            secret=env.get("LEAF7_SECRET") or None,
            signing_secret=env.get("LEAF7_SIGNING_SECRET") or None,
            signing_grace=_int(env, "LEAF7_SIGNING_GRACE", 30 * 86400),
            obfuscate_timeout=_float(env, "LEAF7_OBFUSCATE_TIMEOUT", 60.0, minimum=0.01),
            api_key_grace=_int(env, "LEAF7_API_KEY_GRACE", 86400),
            trusted_proxies=_networks(env, "LEAF7_TRUSTED_PROXIES"),
            rate_window=_int(env, "LEAF7_RATE_WINDOW", 60, minimum=1),
            rate_vendor=_int(env, "LEAF7_RATE_VENDOR", 60),
            rate_keygen=_int(env, "LEAF7_RATE_KEYGEN", 30),
            rate_execute=_int(env, "LEAF7_RATE_EXECUTE", 120),
            brute_force_limit=_int(env, "LEAF7_BRUTE_FORCE_LIMIT", 20),
            brute_force_window=_int(env, "LEAF7_BRUTE_FORCE_WINDOW", 600, minimum=1),
            brute_force_limit_48=(
                _int(env, "LEAF7_BRUTE_FORCE_LIMIT_48", 0)
                if env.get("LEAF7_BRUTE_FORCE_LIMIT_48")
                else None
            ),
            workers=_int(env, "LEAF7_WORKERS", 1, minimum=1),
            redis_timeout=_float(env, "LEAF7_REDIS_TIMEOUT", 2.0, minimum=0.05),
            pipeline_batch=_int(env, "LEAF7_PIPELINE_BATCH", 4, minimum=1),
            check_batch=_int(env, "LEAF7_CHECK_BATCH", 8, minimum=1),
            fsync=_choice(env, "LEAF7_FSYNC", "waitaof", FSYNC_MODES),
            access_log=_bool(env, "LEAF7_ACCESS_LOG", True),
            shutdown_timeout=_float(env, "LEAF7_SHUTDOWN_TIMEOUT", 5.0, minimum=0),
            body_timeout=_float(env, "LEAF7_BODY_TIMEOUT", 10.0, minimum=0.1),
            metrics_token=env.get("LEAF7_METRICS_TOKEN") or None,
            role_lease=_float(env, "LEAF7_ROLE_LEASE", 60.0, minimum=1.0),
            max_conn_per_ip=_int(env, "LEAF7_MAX_CONN_PER_IP", 256, minimum=1),
            min_replicas_ack=min_replicas_ack,
            aof_rewrite_min_mb=_int(
                env, "LEAF7_AOF_REWRITE_MIN_MB", AOF_REWRITE_MIN_MB, minimum=64
            ),
            aof_quiet_rewrite_mb=_int(env, "LEAF7_AOF_QUIET_REWRITE_MB", 64),
            aof_quiet_ops=_int(env, "LEAF7_AOF_QUIET_OPS", 1000),
            workink_api=_base(env, "LEAF7_WORKINK_API", "https://work.ink/_api/v2"),
            linkvertise_api=_base(
                env, "LEAF7_LINKVERTISE_API", "https://publisher.linkvertise.com/api/v1"
            ),
            turnstile_api=_base(
                env, "LEAF7_TURNSTILE_API", "https://challenges.cloudflare.com/turnstile/v0"
            ),
            free_keys_timeout=_float(env, "LEAF7_FREE_KEYS_TIMEOUT", 5.0, minimum=0.1),
            free_keys_sessions=_int(env, "LEAF7_FREE_KEYS_SESSIONS", 10),
            **_discord(env),
        )
