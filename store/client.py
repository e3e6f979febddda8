"""Redis clients from a URL: one server (``redis://``, ``rediss://``, ``unix://``) or a
Redis Cluster (``redis+cluster://host:port[,host:port...]``, ``rediss+cluster://`` for TLS)."""

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from store.client_options import client_options

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterUrl:
    """``redis+cluster://[user:password@]host:port[,host:port...][/]``; any reachable node
    is enough to discover the cluster, list several so start-up survives one being down."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError(f"not a cluster URL: {url!r}")
    rest = rest.rstrip("/")
    if "/" in rest or "?" in rest:
        raise ValueError("a cluster URL takes no database or options (Redis Cluster has db 0)")
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
            raise ValueError(f"cluster nodes are host:port, got {part.strip()!r}")
        nodes.append((host.strip("[]"), int(port)))
    return ClusterUrl(tuple(nodes), username, password, scheme.lower() == "rediss+cluster")


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
    return Redis.from_url(url, decode_responses=True, max_connections=max_connections, **options)
