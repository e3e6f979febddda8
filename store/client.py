"""Redis clients from a URL: one server (``redis://``, ``rediss://``, ``unix://``), a Redis
Cluster (``redis+cluster://host:port[,host:port...]``, ``rediss+cluster://`` for TLS), or a
primary found through Redis Sentinel
(``redis+sentinel://host:port[,host:port...]/<master name>[/db]``, ``rediss+sentinel://``)."""

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from store.client_options import client_options

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    master: str  # the name the sentinels monitor the primary under
    db: int
    username: str | None  # the Redis servers' credentials (the sentinels are asked without)
    password: str | None
    tls: bool


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].lower() in SENTINEL_SCHEMES


def _credentials_and_nodes(
    rest: str, what: str
) -> tuple[str | None, str | None, tuple[tuple[str, int], ...]]:
    """``[user:password@]host:port[,host:port...]``."""
    userinfo, at, hosts = rest.rpartition("@")
    username = password = None
    if at:
        user, colon, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if colon else None
    nodes: list[tuple[str, int]] = []
    for part in hosts.split(","):
        host, colon, port = part.strip().rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{what} are host:port, got {part.strip()!r}")
        nodes.append((host.strip("[]"), int(port)))
    return username, password, tuple(nodes)


def parse_cluster_url(url: str) -> ClusterUrl:
    """``redis+cluster://[user:password@]host:port[,host:port...][/]``; any reachable node
    is enough to discover the cluster, list several so start-up survives one being down."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError(f"not a cluster URL: {url!r}")
    rest = rest.rstrip("/")
    if "/" in rest or "?" in rest:
        raise ValueError("a cluster URL takes no database or options (Redis Cluster has db 0)")
    username, password, nodes = _credentials_and_nodes(rest, "cluster nodes")
    return ClusterUrl(nodes, username, password, scheme.lower() == "rediss+cluster")


def parse_sentinel_url(url: str) -> SentinelUrl:
    """``redis+sentinel://[user:password@]host:port[,host:port...]/<master name>[/db]``: the
    sentinels (any one that answers is enough; list them all) and the name of the primary
    they monitor. ``user:password`` authenticate to the Redis servers, not to the sentinels."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SENTINEL_SCHEMES:
        raise ValueError(f"not a sentinel URL: {url!r}")
    if "?" in rest or "#" in rest:
        raise ValueError("a sentinel URL takes no options")
    hosts, slash, path = rest.partition("/")
    parts = path.rstrip("/").split("/") if slash else []
    if not parts or not parts[0] or len(parts) > 2:
        raise ValueError("a sentinel URL is host:port[,host:port...]/<master name>[/db]")
    master = unquote(parts[0])
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit() or len(parts[1]) > 5:
            raise ValueError(f"the database of a sentinel URL is a number, got {parts[1]!r}")
        db = int(parts[1])
    username, password, nodes = _credentials_and_nodes(hosts, "sentinels")
    return SentinelUrl(nodes, master, db, username, password, scheme.lower() == "rediss+sentinel")


def connect(
    url: str, *, max_connections: int = 64, timeout: float | None = None
) -> "Redis | RedisCluster":
    """A client for ``url`` with decoded replies. Nothing is connected until first use.
    With ``timeout``, every socket wait is bounded by it and a failed connection is retried
    once, quickly (store/client_options.py)."""
    if is_cluster_url(url):
        c = parse_cluster_url(url)
        bounded: dict[str, Any] = {}
        if timeout is not None:
            bounded = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in c.nodes],
            username=c.username,
            password=c.password,
            ssl=c.tls,
            decode_responses=True,
            max_connections=max_connections,
            **bounded,
        )
    options = client_options(timeout) if timeout is not None else {"health_check_interval": 30}
    if is_sentinel_url(url):
        return _sentinel_client(parse_sentinel_url(url), max_connections, timeout, options)
    return Redis.from_url(url, decode_responses=True, max_connections=max_connections, **options)


def _sentinel_client(
    s: SentinelUrl, max_connections: int, timeout: float | None, options: dict[str, Any]
) -> Redis:
    """The primary's client: its pool asks the sentinels for the primary's address on every
    new connection (redis-py ``SentinelConnectionPool``), so after a failover the next
    connection goes to the promoted replica. A sentinel is asked within half the bound, so
    that one that does not answer leaves time to ask the next."""
    wait = None if timeout is None else timeout / 2
    ask = sentinel_options(s, wait, options.get("retry"))
    sentinel = Sentinel(list(s.sentinels), sentinel_kwargs=ask)  # type: ignore[no-untyped-call]
    client: Redis = sentinel.master_for(
        s.master,
        decode_responses=True,
        max_connections=max_connections,
        **primary_options(s),
        **options,
    )
    return client


def sentinel_options(s: SentinelUrl, wait: float | None, retry: Any) -> dict[str, Any]:
    """The settings of a client of the sentinels (this module's async ones, and the sync ones
    of ``leaf7 backup``): TLS as the URL says, no credentials (those are the Redis servers');
    with ``wait``, every socket wait bounded by it and ``retry`` as the retry policy."""
    ask: dict[str, Any] = {"ssl": s.tls}
    if wait is not None:
        ask.update(socket_timeout=wait, socket_connect_timeout=wait, retry=retry)
    return ask


def primary_options(s: SentinelUrl) -> dict[str, Any]:
    """The settings of a client of the primary the sentinels name: its database, the URL's
    credentials, TLS."""
    return {"db": s.db, "username": s.username, "password": s.password, "ssl": s.tls}


async def aclose(client: "Redis | RedisCluster") -> None:
    """Closes a client from ``connect`` (and, for Sentinel, its clients of the sentinels)."""
    await client.aclose()
    pool = client.connection_pool if isinstance(client, Redis) else None
    if isinstance(pool, SentinelConnectionPool):
        await pool.sentinel_manager.aclose()
