"""Explicit, bounded redis-py client settings.

redis-py's defaults retry a failed connection three times with an exponential, jittered
backoff (base 1 s) and wait up to 5 s for a socket: a dead or unreachable server surfaces only
after several seconds, and a stopped one (SIGSTOP, a partition) can hold a request for
``socket_timeout``. leaf7 answers 503 instead, within ``LEAF7_REDIS_TIMEOUT``: one quick
retry (a pooled connection that the server closed in between is the common case), no retry
after a timeout, and every socket wait bounded by the timeout.
"""

from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

RETRIES = 1
BACKOFF_BASE = 0.02  # seconds before the retry
BACKOFF_CAP = 0.1


def client_options(timeout: float) -> dict[str, Any]:
    """Keyword arguments for ``Redis(...)`` / ``Redis.from_url(...)``."""
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        # Only connection errors are retried: a timeout already took the whole budget.
        "retry": Retry(
            ExponentialBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE),
            RETRIES,
            supported_errors=(RedisConnectionError,),
        ),
        "health_check_interval": 30,
    }
