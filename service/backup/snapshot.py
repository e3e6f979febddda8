"""The embedded Valkey's point-in-time copy: the running server makes an RDB snapshot with
``BGSAVE`` (a fork: the data as of one instant, while it keeps serving); the snapshot file is
moved out of the data directory's way, and a private, non-persistent Valkey is started on it
(unix socket only, in a temporary directory) for the backup to read, which nobody else
writes to."""

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from service.backup.errors import BackupError
from service.backup.transport import client, command, server_version
from service.config import Settings
from service.embedded import EmbeddedError, EmbeddedValkey, spawn

SNAPSHOT_TIMEOUT = 600.0  # seconds for BGSAVE to finish, and for the copy to load


@contextlib.contextmanager
def embedded(settings: Settings) -> Iterator[EmbeddedValkey]:
    """The data directory's Valkey: the running one (shared), or started for this command."""
    try:
        server = EmbeddedValkey(settings.data_dir, settings.aof_rewrite_min_mb).start()
    except (EmbeddedError, OSError) as exc:
        raise BackupError(
            f"cannot start the embedded Valkey of {settings.data_dir}: {exc}"
        ) from exc
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def point_in_time(settings: Settings, timeout: float) -> Iterator[tuple[redis.Redis, str]]:
    """A client of a private server on a snapshot of the data directory's Valkey, and that
    Valkey's version; one backup of a data directory at a time. The snapshot and its server
    are gone afterwards (a killed backup's are removed by the next)."""
    with embedded(settings) as server:
        data_dir = server.data_dir
        with _lock(data_dir / ".backup.lock"):
            for stale in data_dir.glob(".backup-*"):  # left by a killed backup
                shutil.rmtree(stale, ignore_errors=True)
            workdir = Path(tempfile.mkdtemp(dir=data_dir, prefix=".backup-"))
            try:
                source = client(unix_socket_path=str(server.socket_path))
                try:
                    rdb = _bgsave(source, timeout)
                    version = server_version(source)
                finally:
                    source.close()
                # A rename (same directory tree): no copy, and no stray dump.rdb left.
                os.replace(rdb, workdir / "dump.rdb")
                snapshot = _SnapshotServer(workdir, timeout)
                try:
                    yield snapshot.client, version
                finally:
                    snapshot.stop()
            finally:
                shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BackupError(f"another leaf7 backup of {path.parent} is running") from exc
        yield


def _bgsave(source: redis.Redis, timeout: float) -> Path:
    """Has the server write an RDB snapshot (a fork: the data as of one instant) and returns
    its path once written."""
    deadline = time.monotonic() + timeout

    def persistence() -> dict[str, Any]:
        if time.monotonic() > deadline:
            raise BackupError(f"the snapshot (BGSAVE) did not finish within {timeout:.0f} s")
        return dict(source.info("persistence"))

    while True:
        before = int(persistence()["rdb_saves"])
        try:
            # SCHEDULE: if an AOF rewrite is running, the save starts right after it.
            command(source, "BGSAVE", "SCHEDULE")
            break
        except redis.ResponseError as exc:
            if "in progress" not in str(exc):
                raise BackupError(f"the server refused BGSAVE: {exc}") from exc
        while int(persistence()["rdb_bgsave_in_progress"]):  # someone else's: wait, again
            time.sleep(0.05)
    while True:
        info = persistence()
        if int(info["rdb_saves"]) > before and not int(info["rdb_bgsave_in_progress"]):
            break
        time.sleep(0.05)
    if info.get("rdb_last_bgsave_status") != "ok":
        raise BackupError("the snapshot (BGSAVE) failed; see valkey.log in the data directory")
    return Path(_config(source, "dir")) / _config(source, "dbfilename")


def _config(source: redis.Redis, name: str) -> str:
    reply = source.config_get(name)
    value = reply.get(name, reply.get(name.encode()))  # type: ignore[call-overload]
    if value is None:
        raise BackupError(f"the server does not tell its {name} (CONFIG GET)")
    return os.fsdecode(value)


class _SnapshotServer:
    """A private Valkey on an RDB file: no persistence, no TCP, a unix socket in a temporary
    directory of its own (mode 0700)."""

    def __init__(self, directory: Path, timeout: float) -> None:
        self.sock_dir = Path(tempfile.mkdtemp(prefix="leaf7-backup-"))
        sock = self.sock_dir / "valkey.sock"
        self.directory = directory
        self.process = spawn(directory, sock, "--dbfilename", "dump.rdb", "--appendonly", "no")
        self.client = client(unix_socket_path=str(sock))
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    raise BackupError(
                        f"the snapshot could not be loaded (valkey-server exited with "
                        f"{self.process.returncode}): {self._log()}"
                    )
                with contextlib.suppress(redis.RedisError):
                    if self.client.ping():  # LOADING (an error) until the file is loaded
                        return
                if time.monotonic() > deadline:
                    raise BackupError(f"the snapshot did not load within {timeout:.0f} s")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise

    def _log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "valkey.log").read_text(errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.kill()  # nothing to save: it is a throwaway copy
        self.process.wait(15)
        shutil.rmtree(self.sock_dir, ignore_errors=True)
