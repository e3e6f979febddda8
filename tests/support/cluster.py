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


class EmbeddedCluster:
    """A local Valkey Cluster of ``masters`` primaries (no replicas) from the bundled binary,
    on loopback ports, for tests, benchmarks and trying cluster mode: every node gets an equal
    share of the 16384 slots (CLUSTER ADDSLOTSRANGE), the nodes are introduced to each other
    (CLUSTER MEET) and ``start`` returns once every node reports ``cluster_state:ok`` and the
    same slot map."""

    def __init__(self, data_dir: Path, masters: int = 3, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir.resolve()
        self.masters = masters
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
        for i in range(self.masters):
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
                "--cluster-node-timeout", "5000",
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
            for i, c in enumerate(clients):
                last = 16383 if i == self.masters - 1 else (i + 1) * share - 1
                _cmd(c, "CLUSTER ADDSLOTSRANGE", i * share, last)
            for p, bus in zip(self.ports[1:], self.bus_ports[1:], strict=True):
                _cmd(clients[0], "CLUSTER MEET", self.host, p, bus)
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
        return bool(state == "ok" and covered == 16384 and len(slots) == self.masters)

    def _wait(self, ready: Callable[[], Any], deadline: float) -> None:
        while True:
            for proc in self.processes:
                if proc.poll() is not None:
                    raise EmbeddedError(f"a cluster node exited with {proc.returncode}")
            try:
                if ready():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise EmbeddedError("the Valkey cluster did not become ready in time")
            time.sleep(0.05)

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
