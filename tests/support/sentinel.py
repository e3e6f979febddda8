"""A local Redis Sentinel setup from the bundled binary, for failover tests: one primary,
replicas (``--replicaof``) and sentinels (``valkey-server --sentinel``), all on loopback ports,
each server in its own process group (``stop`` kills whatever is left of them)."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from service.embedded import EmbeddedError, binary_path, server_env
from tests.support.cluster import wait_until

MASTER = "leaf7"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cmd(client: "redis.Redis", *args: Any) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


class SentinelGroup:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels (quorum 2) monitoring it
    as ``MASTER``. Data nodes run with AOF on (``appendfsync everysec``, ``hz 100``, as the
    embedded Valkey), so ``WAITAOF 1 N`` can count the replicas. ``start`` returns once every
    sentinel knows the replicas and the other sentinels (a failover can then happen)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        host: str = "127.0.0.1",
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.replicas = replicas
        self.sentinels = sentinels
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.host = host
        self.data_ports: list[int] = []
        self.sentinel_ports: list[int] = []
        self.processes: dict[int, subprocess.Popen[bytes]] = {}  # port -> its server

    @property
    def url(self) -> str:
        hosts = ",".join(f"{self.host}:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}"

    def client(self, port: int) -> "redis.Redis":
        return redis.Redis(host=self.host, port=port, decode_responses=True, socket_timeout=5)

    def ask(self, port: int, *args: Any) -> Any:
        """One command to the server on ``port``, on a connection of its own (closed)."""
        with self.client(port) as c:
            return _cmd(c, *args)

    # ---- start and stop -----------------------------------------------------------------

    def _spawn(self, port: int, name: str, args: list[str]) -> None:
        node_dir = self.data_dir / name
        node_dir.mkdir(parents=True, exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [str(binary_path()), *args],
            cwd=node_dir,
            start_new_session=True,  # its own process group: stop() kills the group
            stdin=subprocess.DEVNULL,
            env=server_env(),
        )

    def _start_data(self, port: int, name: str, replicaof: int | None) -> None:
        args = [
            "--port", str(port),
            "--bind", self.host,
            "--dir", str(self.data_dir / name),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--hz", "100",
            "--repl-diskless-sync-delay", "0",  # a (re)joining replica syncs at once
            "--save", "",
            "--daemonize", "no",
            "--logfile", "valkey.log",
        ]  # fmt: skip
        if replicaof is not None:
            args += ["--replicaof", self.host, str(replicaof)]
        self._spawn(port, name, args)

    def start(self, timeout: float = 30.0) -> "SentinelGroup":
        deadline = time.monotonic() + timeout
        try:
            primary = _free_port()
            self.data_ports.append(primary)
            self._start_data(primary, "primary", None)
            for i in range(self.replicas):
                port = _free_port()
                self.data_ports.append(port)
                self._start_data(port, f"replica-{i}", primary)
            for port in self.data_ports:
                self._wait(lambda p=port: self.ask(p, "PING"), deadline)  # type: ignore[misc]
            for port in self.data_ports[1:]:
                self._wait(lambda p=port: self._linked(p), deadline)  # type: ignore[misc]
            for i in range(self.sentinels):
                port = _free_port()
                self.sentinel_ports.append(port)
                sdir = self.data_dir / f"sentinel-{i}"
                sdir.mkdir(parents=True, exist_ok=True)
                conf = sdir / "sentinel.conf"
                conf.write_text(
                    f"port {port}\n"
                    f"bind {self.host}\n"
                    f"dir {sdir}\n"
                    f"logfile sentinel.log\n"
                    f"sentinel monitor {MASTER} {self.host} {primary} 2\n"
                    f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}\n"
                    f"sentinel failover-timeout {MASTER} {self.failover_timeout_ms}\n"
                    f"sentinel parallel-syncs {MASTER} 1\n"
                )
                self._spawn(port, f"sentinel-{i}", [str(conf), "--sentinel"])
            self._wait(self._sentinels_ready, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _linked(self, port: int) -> bool:
        info = self.ask(port, "INFO", "replication")
        return bool(info.get("master_link_status") == "up")

    def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            master = self.ask(port, "SENTINEL", "MASTER", MASTER)
            if isinstance(master, list):
                master = dict(zip(master[::2], master[1::2], strict=True))
            if int(master["num-slaves"]) < self.replicas:
                return False
            if int(master["num-other-sentinels"]) < self.sentinels - 1:
                return False
        return True

    def _wait(self, ready: Callable[[], Any], deadline: float) -> None:
        servers = {f"the server on port {port}": p for port, p in self.processes.items()}
        wait_until(ready, deadline, servers, "the Sentinel setup")

    def stop(self, timeout: float = 10.0) -> None:
        procs, self.processes = list(self.processes.values()), {}
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
            with contextlib.suppress(ProcessLookupError):  # and whatever it forked (AOF rewrite)
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    # ---- faults ---------------------------------------------------------------------------

    def primary_port(self) -> int:
        """The primary's port as the first sentinel that answers sees it."""
        for port in self.sentinel_ports:
            try:
                addr = self.ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
            except redis.RedisError:
                continue
            return int(addr[1])
        raise EmbeddedError("no sentinel answers")

    def kill(self, port: int) -> None:
        """SIGKILL the server on ``port`` (no shutdown, no final AOF flush)."""
        proc = self.processes[port]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def wait_failover(self, old: int, timeout: float = 20.0) -> int:
        """Waits until every sentinel names a primary other than ``old``; returns its port."""
        deadline = time.monotonic() + timeout

        def moved() -> bool:
            ports = {
                int(self.ask(p, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)[1])
                for p in self.sentinel_ports
            }
            return len(ports) == 1 and old not in ports

        self._wait_plain(moved, deadline)
        return self.primary_port()

    def _wait_plain(self, ready: Callable[[], bool], deadline: float) -> None:
        while not self._try(ready):
            if time.monotonic() > deadline:
                raise EmbeddedError("no failover in time")
            time.sleep(0.05)

    @staticmethod
    def _try(ready: Callable[[], bool]) -> bool:
        try:
            return ready()
        except redis.RedisError:
            return False
