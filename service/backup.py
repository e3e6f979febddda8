"""``leaf7 backup FILE`` and ``leaf7 restore FILE`` (an operator tool, not request handling:
it talks to Redis with redis-py directly, every wait bounded).

One file format for every server, written through the protocol: a header, then one record
per key (its name, its absolute expiry time in milliseconds, and its ``DUMP`` payload: the
value with its exact type and encoding, stream consumer groups included), then an end marker
with the record count and a SHA-256 of everything before it. Keys are read with ``SCAN`` in
batches (one pipelined round trip of ``DUMP`` + ``PEXPIRETIME`` per batch) and written as a
stream, so memory stays bounded by one batch whatever the data set.

*What is read* decides the consistency:

- **The embedded Valkey** (no ``REDIS_URL``): a point-in-time copy. The running server makes
  an RDB snapshot with ``BGSAVE`` (a fork: the data as of one instant, while it keeps
  serving); the snapshot file is moved out of the data directory, a private, non-persistent
  Valkey is started on it (unix socket only, in a temporary directory) and the records are
  read from that server, which nobody else writes to.
- **``REDIS_URL``** (a server on another machine, a managed service, the primary the
  sentinels name, a Redis Cluster: every primary is scanned): the live data set,
  **consistent per key**, not as of one instant (a key written while the scan runs is
  captured before or after that write). For a point-in-time copy of a remote server, use
  its provider's snapshots, or run the backup against a replica whose replication is paused.

Restore verifies the whole file (structure, count, checksum) before it writes anything, then
refuses a target that holds any key unless ``force`` is given, and loads every record with
``RESTORE <key> <expiry> <payload> REPLACE ABSTTL``: the same absolute expiry time, to the
millisecond; a key whose time has passed meanwhile is skipped (it would be gone already). On
the embedded Valkey that goes through the running server, so it lands in the AOF (which is
what that server loads when it starts), confirmed with ``WAITAOF``.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from service.config import Settings
from service.embedded import EmbeddedError, EmbeddedValkey, binary_path, server_env
from store.client import (
    SentinelUrl,
    is_cluster_url,
    is_sentinel_url,
    parse_cluster_url,
    parse_sentinel_url,
)

MAGIC = b"LEAF7BAK"
FORMAT = 1
BATCH = 500  # keys per SCAN / pipelined DUMP round trip / pipelined RESTORE batch
BATCH_BYTES = 8 << 20  # a RESTORE batch is also cut at this many payload bytes
COMMAND_TIMEOUT = 60.0  # seconds any one Redis reply may take (a DUMP of a big stream)
SNAPSHOT_TIMEOUT = 600.0  # seconds for BGSAVE to finish, and for the copy to load
SENTINEL_TIMEOUT = 2.0  # seconds a sentinel may take to answer before the next is asked

# The file: MAGIC, _HEAD, the header (JSON: format, created_at, consistency, source, server);
# per key "K", _KEY, the key, _VALUE, the DUMP payload; then "E", _END and the SHA-256 of
# every byte before it. Integers are big-endian.
_HEAD = struct.Struct(">HI")  # format version, header length
_KEY = struct.Struct(">I")  # key length
_VALUE = struct.Struct(">QI")  # expiry (unix ms, 0 = none), payload length
_END = struct.Struct(">Q")  # record count
_MAX_HEADER = 1 << 20
_MAX_KEY = 512 << 20  # Redis' own limit on a key name


class BackupError(Exception):
    """The backup cannot be made or restored (a bad file, a server that refuses)."""


class BadBackupFile(BackupError):
    """Not a complete, intact leaf7 backup file."""


class TargetNotEmpty(BackupError):
    """Restore refused: the target already holds keys (and ``force`` was not given)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    keys: int
    size: int
    seconds: float
    consistency: str


@dataclass(frozen=True, slots=True)
class RestoreResult:
    keys: int
    expired: int
    seconds: float
    created_at: str
    consistency: str


def _cmd(client: Any, *args: Any) -> Any:
    return client.execute_command(*args)


# ---------------------------------------------------------------------------------- the file


class _Writer:
    """Writes the file atomically: a temporary file next to ``path`` (mode 0600), fsynced and
    renamed over ``path`` only once the end marker is written; removed on any failure."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.digest = hashlib.sha256()
        self.count = 0
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self.tmp = Path(tmp)
        self.file: IO[bytes] = os.fdopen(fd, "wb", buffering=1 << 20)
        head = orjson.dumps(header)
        self._write(MAGIC + _HEAD.pack(FORMAT, len(head)) + head)

    def _write(self, data: bytes) -> None:
        self.digest.update(data)
        self.file.write(data)

    def record(self, key: bytes, expire_ms: int, payload: bytes) -> None:
        self._write(b"K" + _KEY.pack(len(key)) + key + _VALUE.pack(expire_ms, len(payload)))
        self._write(payload)
        self.count += 1

    def commit(self) -> int:
        self._write(b"E" + _END.pack(self.count))
        self.file.write(self.digest.digest())
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return self.path.stat().st_size

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes
    expire_ms: int  # absolute, unix milliseconds; 0: no expiry
    payload: bytes


class BackupReader:
    """Reads a backup file: ``header`` at once, then ``records()``, which raises
    ``BadBackupFile`` as soon as the file turns out truncated, corrupt or not a backup (the
    checksum is known only at the end: see ``verify``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.file: IO[bytes] = open(path, "rb", buffering=1 << 20)  # noqa: SIM115
        except OSError as exc:
            raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from exc
        self.size = os.fstat(self.file.fileno()).st_size
        self.pos = 0
        self.digest = hashlib.sha256()
        try:
            magic = self._read(len(MAGIC))
            if magic != MAGIC:
                raise BadBackupFile(f"{path} is not a leaf7 backup file")
            version, head_len = _HEAD.unpack(self._read(_HEAD.size))
            if version != FORMAT:
                raise BadBackupFile(
                    f"{path} is a backup of format {version}; this leaf7 reads format {FORMAT}"
                )
            if head_len > _MAX_HEADER:
                raise BadBackupFile(f"{path} is corrupt (header length {head_len})")
            header = orjson.loads(self._read(head_len))
        except orjson.JSONDecodeError as exc:
            self.close()
            raise BadBackupFile(f"{path} is corrupt (unreadable header)") from exc
        except BaseException:
            self.close()
            raise
        if not isinstance(header, dict):
            self.close()
            raise BadBackupFile(f"{path} is corrupt (unreadable header)")
        self.header: dict[str, Any] = header

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "BackupReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _truncated(self) -> BadBackupFile:
        if not self.size:
            return BadBackupFile(f"{self.path} is empty")
        return BadBackupFile(
            f"{self.path} is truncated or corrupt: it ends at byte {self.size} in the middle "
            "of the data (an interrupted copy?)"
        )

    def _read(self, n: int, *, hashed: bool = True) -> bytes:
        if n > self.size - self.pos:
            raise self._truncated()
        data = self.file.read(n)
        if len(data) != n:
            raise self._truncated()
        self.pos += n
        if hashed:
            self.digest.update(data)
        return data

    def records(self) -> Iterator[Record]:
        count = 0
        while True:
            tag = self._read(1)
            if tag == b"E":
                (expected,) = _END.unpack(self._read(_END.size))
                checksum = self._read(32, hashed=False)
                if self.pos != self.size:
                    raise BadBackupFile(f"{self.path} is corrupt (data after the end marker)")
                if checksum != self.digest.digest() or expected != count:
                    raise BadBackupFile(f"{self.path} is corrupt (checksum mismatch)")
                return
            if tag != b"K":
                raise BadBackupFile(f"{self.path} is corrupt (bad record at byte {self.pos - 1})")
            (key_len,) = _KEY.unpack(self._read(_KEY.size))
            if key_len > _MAX_KEY:
                raise BadBackupFile(f"{self.path} is corrupt (a key of {key_len} bytes)")
            key = self._read(key_len)
            expire_ms, payload_len = _VALUE.unpack(self._read(_VALUE.size))
            payload = self._read(payload_len)
            count += 1
            yield Record(key, expire_ms, payload)


def verify(path: Path) -> tuple[dict[str, Any], int]:
    """Reads the whole file (one record in memory at a time): its header and record count,
    or ``BadBackupFile``."""
    with BackupReader(path) as reader:
        n = sum(1 for _ in reader.records())
        return reader.header, n


# -------------------------------------------------------------------------------- servers


def _client(**kwargs: Any) -> redis.Redis:
    return redis.Redis(
        socket_timeout=COMMAND_TIMEOUT,
        socket_connect_timeout=10,
        retry=Retry(NoBackoff(), 0),
        **kwargs,
    )


@dataclass
class _Target:
    """A server (or a cluster): ``client`` for writes, ``primaries`` to scan and count."""

    client: "redis.Redis | RedisCluster"
    primaries: list[redis.Redis]

    @property
    def cluster(self) -> bool:
        return isinstance(self.client, RedisCluster)

    def close(self) -> None:
        self.client.close()

    def dbsize(self) -> int:
        return sum(int(_cmd(node, "DBSIZE")) for node in self.primaries)

    def version(self) -> str:
        info = self.primaries[0].info("server")
        if "valkey_version" in info:
            return f"valkey {info['valkey_version']}"
        return f"redis {info.get('redis_version', '?')}"


def _connect(url: str) -> _Target:
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
            return _Target(cluster, nodes)
        # One connection: the final WAITAOF must run on the connection that wrote.
        if is_sentinel_url(url):
            s = parse_sentinel_url(url)
            host, port = _primary(s)
            client = _client(
                host=host,
                port=port,
                db=s.db,
                username=s.username,
                password=s.password,
                ssl=s.tls,
                max_connections=1,
            )
        else:
            client = redis.Redis.from_url(
                url,
                socket_timeout=COMMAND_TIMEOUT,
                socket_connect_timeout=10,
                retry=Retry(NoBackoff(), 0),
                max_connections=1,
            )
        client.ping()
        return _Target(client, [client])
    except (redis.RedisError, ValueError) as exc:
        raise BackupError(f"cannot connect to REDIS_URL: {exc}") from exc


def _primary(s: SentinelUrl) -> tuple[str, int]:
    """The primary's address, as the first sentinel that answers names it (each one asked
    once, within ``SENTINEL_TIMEOUT``); when none does, what each one answered."""
    ask = {
        "ssl": s.tls,
        "socket_timeout": SENTINEL_TIMEOUT,
        "socket_connect_timeout": SENTINEL_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
    }
    sentinel = Sentinel(list(s.sentinels), sentinel_kwargs=ask)  # type: ignore[no-untyped-call]
    answers = []
    try:
        # Sentinel.discover_master's loop, keeping each sentinel's answer for the message.
        for (host, port), client in zip(s.sentinels, sentinel.sentinels, strict=True):
            try:
                state = client.sentinel_masters().get(s.master)  # type: ignore[union-attr]
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
        for client in sentinel.sentinels:
            client.close()
    raise BackupError(
        f"cannot connect to REDIS_URL: no sentinel names the primary {s.master!r} "
        f"({'; '.join(answers)})"
    )


@contextlib.contextmanager
def _embedded(settings: Settings) -> Iterator[EmbeddedValkey]:
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
def _lock(path: Path) -> Iterator[None]:
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BackupError(f"another leaf7 backup of {path.parent} is running") from exc
        yield


def _bgsave(client: redis.Redis, timeout: float) -> Path:
    """Has the server write an RDB snapshot (a fork: the data as of one instant) and returns
    its path once written."""
    deadline = time.monotonic() + timeout

    def persistence() -> dict[str, Any]:
        if time.monotonic() > deadline:
            raise BackupError(f"the snapshot (BGSAVE) did not finish within {timeout:.0f} s")
        return dict(client.info("persistence"))

    while True:
        before = int(persistence()["rdb_saves"])
        try:
            # SCHEDULE: if an AOF rewrite is running, the save starts right after it.
            _cmd(client, "BGSAVE", "SCHEDULE")
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
    return Path(_config(client, "dir")) / _config(client, "dbfilename")


def _config(client: redis.Redis, name: str) -> str:
    reply = client.config_get(name)
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
        args = [
            str(binary_path()),
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--dir", str(directory),
            "--dbfilename", "dump.rdb",
            "--appendonly", "no",
            "--save", "",
            "--daemonize", "no",
            "--logfile", "valkey.log",
        ]  # fmt: skip
        self.directory = directory
        self.process = subprocess.Popen(  # noqa: S603
            args, cwd=directory, start_new_session=True, stdin=subprocess.DEVNULL, env=server_env()
        )
        self.client = _client(unix_socket_path=str(sock))
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


# --------------------------------------------------------------------------------- backup


def _export(primaries: Sequence[redis.Redis], out: _Writer) -> None:
    """Every key of every primary into ``out``. The keys of a SCAN page are dumped in
    pipelined chunks sized so that one chunk's replies stay near ``BATCH_BYTES`` (the size
    of the values seen so far decides), so a data set of big values does not hold 500 of them
    in memory at once."""
    chunk = 8  # grows 4x per chunk while the values are small
    for node in primaries:
        cursor = 0
        while True:
            cursor, keys = node.scan(cursor, count=BATCH)
            while keys:
                part, keys = keys[:chunk], keys[chunk:]
                pipe = node.pipeline(transaction=False)
                for key in part:
                    pipe.dump(key)
                    _cmd(pipe, "PEXPIRETIME", key)
                replies = pipe.execute()
                size = 0
                for i, key in enumerate(part):
                    payload, expire_ms = replies[2 * i], int(replies[2 * i + 1])
                    if payload is None or expire_ms == -2:  # deleted since the SCAN
                        continue
                    out.record(os.fsencode(key), max(expire_ms, 0), payload)
                    size += len(payload)
                del replies
                chunk = max(1, min(BATCH, 4 * len(part), BATCH_BYTES * len(part) // max(size, 1)))
            if cursor == 0:
                break


def backup(settings: Settings, path: Path, *, timeout: float = SNAPSHOT_TIMEOUT) -> BackupResult:
    """Writes a backup of everything in the data directory's Valkey (point-in-time) or in
    ``REDIS_URL`` (per key) to ``path``, atomically."""
    started = time.monotonic()
    path = Path(path)
    if path.is_dir():
        raise BackupError(f"{path} is a directory; give the backup file's name")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise BackupError(f"{path.parent} is not writable")
    header: dict[str, Any] = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    if settings.redis_url is None:
        with _embedded(settings) as server:
            data_dir = server.data_dir
            with _lock(data_dir / ".backup.lock"):
                for stale in data_dir.glob(".backup-*"):  # left by a killed backup
                    shutil.rmtree(stale, ignore_errors=True)
                workdir = Path(tempfile.mkdtemp(dir=data_dir, prefix=".backup-"))
                try:
                    source = _client(unix_socket_path=str(server.socket_path))
                    try:
                        rdb = _bgsave(source, timeout)
                        version = _Target(source, [source]).version()
                    finally:
                        source.close()
                    # A rename (same directory tree): no copy, and no stray dump.rdb left.
                    os.replace(rdb, workdir / "dump.rdb")
                    snapshot = _SnapshotServer(workdir, timeout)
                    try:
                        header |= {"consistency": "point-in-time", "server": version}
                        header["source"] = "embedded"
                        keys, size = _write(path, header, [snapshot.client])
                    finally:
                        snapshot.stop()
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
        consistency = "point-in-time"
    else:
        target = _connect(settings.redis_url)
        try:
            header |= {"consistency": "per-key", "server": target.version()}
            # One server (found through Sentinel or not) or a cluster: restores into either.
            header["source"] = "cluster" if target.cluster else "redis"
            keys, size = _write(path, header, target.primaries)
        finally:
            target.close()
        consistency = "per-key"
    return BackupResult(path, keys, size, time.monotonic() - started, consistency)


def _write(path: Path, header: dict[str, Any], primaries: Sequence[redis.Redis]) -> tuple[int, int]:
    try:
        out = _Writer(path, header)
    except OSError as exc:
        raise BackupError(f"cannot write {path}: {exc}") from exc
    try:
        _export(primaries, out)
        size = out.commit()
    except redis.RedisError as exc:
        out.abort()
        raise BackupError(f"reading the data failed: {exc}") from exc
    except OSError as exc:
        out.abort()
        raise BackupError(f"writing {path} failed: {exc}") from exc
    except BaseException:
        out.abort()
        raise
    return out.count, size


# -------------------------------------------------------------------------------- restore


def restore(settings: Settings, path: Path, *, force: bool = False) -> RestoreResult:
    """Loads a backup into the data directory's Valkey or ``REDIS_URL``. The file is verified
    first (nothing is written from a bad file); a target that holds keys is refused
    (``TargetNotEmpty``) unless ``force``: then keys of the backup replace keys of the same
    name and other keys stay."""
    started = time.monotonic()
    path = Path(path)
    header, _ = verify(path)
    if settings.redis_url is None:
        with _embedded(settings) as server:
            target = _connect(server.url)
            try:
                keys, expired = _load(target, path, force)
            finally:
                target.close()
    else:
        target = _connect(settings.redis_url)
        try:
            keys, expired = _load(target, path, force)
        finally:
            target.close()
    return RestoreResult(
        keys,
        expired,
        time.monotonic() - started,
        str(header.get("created_at", "")),
        str(header.get("consistency", "")),
    )


def _load(target: _Target, path: Path, force: bool) -> tuple[int, int]:
    try:
        present = target.dbsize()
    except redis.RedisError as exc:
        raise BackupError(f"cannot read the target: {exc}") from exc
    if present and not force:
        raise TargetNotEmpty(
            f"the target already holds {present} keys: restore into an empty data directory "
            "or an empty Redis, or add --force to restore over it (keys of the backup replace "
            "keys of the same name; other keys stay)"
        )
    restored = expired = 0
    batch: list[Record] = []
    size = 0

    def flush() -> None:
        nonlocal restored
        pipe = target.client.pipeline(transaction=False)
        for r in batch:
            # REPLACE: SCAN may list a key twice (a rehash); the target was checked empty.
            pipe.execute_command("RESTORE", r.key, r.expire_ms, r.payload, "REPLACE", "ABSTTL")
        try:
            pipe.execute()
        except redis.ResponseError as exc:
            hint = ""
            if "payload version" in str(exc):
                hint = " (the backup comes from a newer server version than the target)"
            raise BackupError(f"the target refused a key: {exc}{hint}") from exc
        restored += len(batch)
        batch.clear()

    with BackupReader(path) as reader:
        try:
            for record in reader.records():
                if record.expire_ms and record.expire_ms <= time.time() * 1000:
                    expired += 1
                    continue
                batch.append(record)
                size += len(record.payload)
                if len(batch) >= BATCH or size >= BATCH_BYTES:
                    flush()
                    size = 0
            if batch:
                flush()
            if not target.cluster:
                _fsync(target.client)
        except BadBackupFile as exc:  # changed on disk since it was verified
            raise BackupError(f"{exc}; the restore stopped part way: restore again") from exc
        except redis.RedisError as exc:
            raise BackupError(f"writing to the target failed: {exc}") from exc
    return restored, expired


def _fsync(client: "redis.Redis | RedisCluster") -> None:
    """Waits until the server has fsynced what this connection wrote (when it has AOF on)."""
    try:
        local, _ = _cmd(client, "WAITAOF", 1, 0, int(COMMAND_TIMEOUT * 1000) // 2)
    except redis.ResponseError:  # AOF off, or a server without WAITAOF: nothing to wait for
        return
    if int(local) < 1:
        raise BackupError("the target did not confirm the restored data on disk (WAITAOF)")
