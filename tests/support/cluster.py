"""A local Valkey Cluster from the bundled binary, for tests and the benchmark (not shipped:
production clusters are the operator's)."""

import functools
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from service.embedded import EmbeddedError, binary_path, server_env


def _cmd(client: "redis.Redis", *args: Any) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    ready: Callable[[], Any],
    deadline: float,
    processes: "dict[str, subprocess.Popen[bytes]]",
    what: str,
) -> None:
    """Polls ``ready()`` until it is true (a Redis error counts as not yet); fails when one of
    ``processes`` exited or ``deadline`` (monotonic) passed."""
    while True:
        for name, proc in processes.items():
            if proc.poll() is not None:
                raise EmbeddedError(f"{name} exited with {proc.returncode}")
        try:
            if ready():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise EmbeddedError(f"{what} did not become ready in time")
        time.sleep(0.05)


class EmbeddedCluster:
    """A local Valkey Cluster of ``masters`` primaries (and ``replicas`` replicas of each,
    CLUSTER REPLICATE) from the bundled binary, on loopback ports, for tests, benchmarks and
    trying cluster mode: every primary gets an equal share of the 16384 slots (CLUSTER
    ADDSLOTSRANGE), the nodes are introduced to each other (CLUSTER MEET) and ``start``
    returns once every node reports ``cluster_state:ok`` and the same slot map."""

    def __init__(
        self,
        data_dir: Path,
        masters: int = 3,
        host: str = "127.0.0.1",
        *,
        replicas: int = 0,
        node_timeout_ms: int = 5000,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.masters = masters
        self.replicas = replicas  # per primary (CLUSTER REPLICATE); failover after the timeout
        self.node_timeout_ms = node_timeout_ms
        self.host = host
        self.ports: list[int] = []
        self.bus_ports: list[int] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{self.host}:{p}" for p in self.ports)

    def client(self, port: int) -> "redis.Redis":
        return redis.Redis(host=self.host, port=port, decode_responses=True, socket_timeout=5)

    def start(self, timeout: float = 30.0) -> "EmbeddedCluster":
        share = 16384 // self.masters
        for i in range(self.masters * (1 + self.replicas)):
            port, bus = _free_port(), _free_port()
            node_dir = self.data_dir / f"node-{i}"
            node_dir.mkdir(parents=True, exist_ok=True)
            args = [
                str(binary_path()),
                "--port", str(port),
                "--bind", self.host,
                "--cluster-enabled", "yes",
                "--cluster-port", str(bus),
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--repl-diskless-sync-delay", "0",
                "--dir", str(node_dir),
                "--appendonly", "no",
                "--save", "",
                "--daemonize", "no",
                "--logfile", "valkey.log",
            ]  # fmt: skip
            self.ports.append(port)
            self.bus_ports.append(bus)
            self.processes.append(
                subprocess.Popen(
                    args,
                    cwd=node_dir,
                    start_new_session=True,
                    stdin=subprocess.DEVNULL,
                    env=server_env(),
                )
            )
        deadline = time.monotonic() + timeout
        try:
            clients = [self.client(p) for p in self.ports]
            for c in clients:
                self._wait(functools.partial(c.ping), deadline)
            for i, c in enumerate(clients[: self.masters]):
                last = 16383 if i == self.masters - 1 else (i + 1) * share - 1
                _cmd(c, "CLUSTER ADDSLOTSRANGE", i * share, last)
            for p, bus in zip(self.ports[1:], self.bus_ports[1:], strict=True):
                _cmd(clients[0], "CLUSTER MEET", self.host, p, bus)
            ids = [_cmd(c, "CLUSTER MYID") for c in clients[: self.masters]]
            for n, c in enumerate(clients[self.masters :]):
                primary = ids[n % self.masters]
                # (the replica must have heard of its primary through the MEETs first)
                self._wait(functools.partial(_cmd, c, "CLUSTER REPLICATE", primary), deadline)
            self._wait(lambda: all(self._settled(c) for c in clients), deadline)
            for c in clients:
                c.close()
        except BaseException:
            self.stop()
            raise
        return self

    def _settled(self, c: "redis.Redis") -> bool:
        info = _cmd(c, "CLUSTER INFO")
        state = info.get("cluster_state") if isinstance(info, dict) else None
        if state is None:
            state = "ok" if "cluster_state:ok" in str(info) else "fail"
        slots = _cmd(c, "CLUSTER SLOTS")
        covered = sum(int(r[1]) - int(r[0]) + 1 for r in slots)
        replicated = all(len(r) - 3 >= self.replicas for r in slots)
        return bool(
            state == "ok" and covered == 16384 and len(slots) == self.masters and replicated
        )

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port`` (``stop`` still reaps it)."""
        proc = self.processes[self.ports.index(port)]
        proc.kill()
        proc.wait()

    def primary_of(self, port: int) -> bool:
        """Whether the node on ``port`` is a primary now."""
        with self.client(port) as c:
            return bool(_cmd(c, "ROLE")[0] == "master")

    def _wait(self, ready: Callable[[], Any], deadline: float) -> None:
        nodes = {f"cluster node {i}": p for i, p in enumerate(self.processes)}
        wait_until(ready, deadline, nodes, "the Valkey cluster")

    def stop(self, timeout: float = 15.0) -> None:
        procs, self.processes = self.processes, []
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
