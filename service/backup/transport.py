"""The servers a backup reads and a restore writes: ``REDIS_URL`` (one server, the primary
the sentinels name, or a Redis Cluster), through sync redis-py clients whose every wait is
bounded and that never retry (an operator command says what failed, at once)."""

from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from service.backup.errors import BackupError
from store.client import (
    SentinelUrl,
    is_cluster_url,
    is_sentinel_url,
    parse_cluster_url,
    parse_sentinel_url,
    primary_options,
    sentinel_options,
)

COMMAND_TIMEOUT = 60.0  # seconds any one Redis reply may take (a DUMP of a big stream)
SENTINEL_TIMEOUT = 2.0  # seconds a sentinel may take to answer before the next is asked


def command(client: Any, *args: Any) -> Any:
    return client.execute_command(*args)


def client(**kwargs: Any) -> redis.Redis:
    return redis.Redis(
        socket_timeout=COMMAND_TIMEOUT,
        socket_connect_timeout=10,
        retry=Retry(NoBackoff(), 0),
        **kwargs,
    )


def server_version(node: redis.Redis) -> str:
    info = node.info("server")
    if "valkey_version" in info:
        return f"valkey {info['valkey_version']}"
    return f"redis {info.get('redis_version', '?')}"


@dataclass
class Target:
    """A server (or a cluster): ``client`` for writes, ``primaries`` to scan and count."""

    client: "redis.Redis | RedisCluster"
    primaries: list[redis.Redis]

    @property
    def cluster(self) -> bool:
        return isinstance(self.client, RedisCluster)

    def close(self) -> None:
        self.client.close()

    def dbsize(self) -> int:
        return sum(int(command(node, "DBSIZE")) for node in self.primaries)

    def version(self) -> str:
        return server_version(self.primaries[0])


def connect(url: str) -> Target:
    try:
        if is_cluster_url(url):
            c = parse_cluster_url(url)
            cluster = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in c.nodes],  # type: ignore[no-untyped-call]
                username=c.username,
                password=c.password,
                ssl=c.tls,
                socket_timeout=COMMAND_TIMEOUT,
                socket_connect_timeout=10,
            )
            primaries = cluster.get_primaries()  # type: ignore[no-untyped-call]
            nodes = [cluster.get_redis_connection(n) for n in primaries]
            return Target(cluster, nodes)
        # One connection: the final WAITAOF must run on the connection that wrote.
        if is_sentinel_url(url):
            s = parse_sentinel_url(url)
            host, port = _primary(s)
            one = client(host=host, port=port, max_connections=1, **primary_options(s))
        else:
            one = redis.Redis.from_url(
                url,
                socket_timeout=COMMAND_TIMEOUT,
                socket_connect_timeout=10,
                retry=Retry(NoBackoff(), 0),
                max_connections=1,
            )
        one.ping()
        return Target(one, [one])
    except (redis.RedisError, ValueError) as exc:
        raise BackupError(f"cannot connect to REDIS_URL: {exc}") from exc


def _primary(s: SentinelUrl) -> tuple[str, int]:
    """The primary's address, as the first sentinel that answers names it (each one asked
    once, within ``SENTINEL_TIMEOUT``); when none does, what each one answered."""
    ask = sentinel_options(s, SENTINEL_TIMEOUT, Retry(NoBackoff(), 0))
    sentinel = Sentinel(list(s.sentinels), sentinel_kwargs=ask)  # type: ignore[no-untyped-call]
    answers = []
    try:
        # Sentinel.discover_master's loop, keeping each sentinel's answer for the message.
        for (host, port), asked in zip(s.sentinels, sentinel.sentinels, strict=True):
            try:
                state = asked.sentinel_masters().get(s.master)  # type: ignore[union-attr]
            except redis.RedisError as exc:
                answers.append(f"{host}:{port}: {exc}")
                continue
            if state is None:
                answers.append(f"{host}:{port} monitors no primary named {s.master!r}")
            elif not sentinel.check_master_state(state, s.master):  # type: ignore[no-untyped-call]
                answers.append(f"{host}:{port} sees {s.master!r} down")
            else:
                return str(state["ip"]), int(state["port"])
    finally:
        for asked in sentinel.sentinels:
            asked.close()
    raise BackupError(
        f"cannot connect to REDIS_URL: no sentinel names the primary {s.master!r} "
        f"({'; '.join(answers)})"
    )
