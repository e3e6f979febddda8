"""The two commands: ``backup`` (every key of leaf7's keyspace into a file, atomically) and
``restore`` (a verified file into an empty target, or over one with ``force``)."""

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from service.backup import snapshot, transport
from service.backup.errors import BackupError, BadBackupFile, TargetNotEmpty
from service.backup.fileformat import (
    BATCH,
    BATCH_BYTES,
    FORMAT,
    BackupReader,
    BackupWriter,
    Record,
    batches,
    verify,
)
from service.config import Settings
from store import keyspace

_MATCH = keyspace.BACKUP_PREFIX + b"*"  # SCAN MATCH: leaf7's keyspace


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
    not_restored: int  # records of the families never restored (sessions, rate windows)
    seconds: float
    created_at: str
    consistency: str


# --------------------------------------------------------------------------------- backup


def backup(
    settings: Settings, path: Path, *, timeout: float = snapshot.SNAPSHOT_TIMEOUT
) -> BackupResult:
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
        with snapshot.point_in_time(settings, timeout) as (source, version):
            header |= {"consistency": "point-in-time", "server": version}
            header["source"] = "embedded"
            keys, size = _write(path, header, [source])
        consistency = "point-in-time"
    else:
        target = transport.connect(settings.redis_url)
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
        out = BackupWriter(path, header)
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


def _export(primaries: Sequence[redis.Redis], out: BackupWriter) -> None:
    """Every key of leaf7's keyspace (``keyspace.backup_family``: under ``l7:``, less the
    families never restored) of every primary into ``out``; another application's keys on a
    shared ``REDIS_URL`` are not read. The keys of a SCAN page are dumped in
    pipelined chunks sized so that one chunk's replies stay near ``BATCH_BYTES`` (the size
    of the values seen so far decides), so a data set of big values does not hold 500 of them
    in memory at once."""
    chunk = 8  # grows 4x per chunk while the values are small
    for node in primaries:
        cursor = 0
        while True:
            cursor, found = node.scan(cursor, match=_MATCH, count=BATCH)
            keys = [k for k in found if keyspace.backup_family(os.fsencode(k)) == "restore"]
            while keys:
                part, keys = keys[:chunk], keys[chunk:]
                pipe = node.pipeline(transaction=False)
                for key in part:
                    pipe.dump(key)
                    transport.command(pipe, "PEXPIRETIME", key)
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


# -------------------------------------------------------------------------------- restore


def restore(settings: Settings, path: Path, *, force: bool = False) -> RestoreResult:
    """Loads a backup into the data directory's Valkey or ``REDIS_URL``. The file is verified
    first (nothing is written from a bad file, nor from one that holds a name outside leaf7's
    keyspace); a target that holds keys is refused (``TargetNotEmpty``) unless ``force``: then
    keys of the backup replace keys of the same name and other keys stay."""
    started = time.monotonic()
    with BackupReader(Path(path)) as reader:
        digests = verify(reader)  # before any server is started or written to
        if settings.redis_url is None:
            with snapshot.embedded(settings) as server:
                target = transport.connect(server.url)
                try:
                    loaded = _load(target, reader, digests, force)
                finally:
                    target.close()
        else:
            target = transport.connect(settings.redis_url)
            try:
                loaded = _load(target, reader, digests, force)
            finally:
                target.close()
        header = reader.header
    return RestoreResult(
        *loaded,
        time.monotonic() - started,
        str(header.get("created_at", "")),
        str(header.get("consistency", "")),
    )


def _load(
    target: transport.Target, reader: BackupReader, digests: list[bytes], force: bool
) -> tuple[int, int, int]:
    """The second pass: each batch written once its bytes are found equal to those the first
    pass verified. Returns (restored, expired, not restored) record counts."""
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
    counts = [0, 0, 0]
    reader.rewind()
    try:
        for i, (batch, digest) in enumerate(batches(reader)):
            if i >= len(digests) or digest != digests[i]:
                raise BadBackupFile(f"{reader.path} changed on disk since it was verified")
            _restore_batch(target, batch, counts)
        if not target.cluster:
            _fsync(target.client)
    except BadBackupFile as exc:
        raise BackupError(f"{exc}; the restore stopped part way: restore again") from exc
    except redis.RedisError as exc:
        raise BackupError(f"writing to the target failed: {exc}") from exc
    return counts[0], counts[1], counts[2]


def _restore_batch(target: transport.Target, batch: list[Record], counts: list[int]) -> None:
    """One pipelined round trip of ``RESTORE``s; ``counts``: restored, expired, not restored
    (a family ``keyspace.NOT_RESTORED`` names)."""
    now_ms = time.time() * 1000
    pipe = target.client.pipeline(transaction=False)
    n = 0
    for r in batch:
        if keyspace.backup_family(r.key) != "restore":
            counts[2] += 1
        elif r.expire_ms and r.expire_ms <= now_ms:
            counts[1] += 1
        else:
            # REPLACE: SCAN may list a key twice (a rehash); the target was checked empty.
            pipe.execute_command("RESTORE", r.key, r.expire_ms, r.payload, "REPLACE", "ABSTTL")
            n += 1
    if not n:
        return
    try:
        pipe.execute()
    except redis.ResponseError as exc:
        hint = ""
        if "payload version" in str(exc):
            hint = " (the backup comes from a newer server version than the target)"
        raise BackupError(f"the target refused a key: {exc}{hint}") from exc
    counts[0] += n


def _fsync(client: "redis.Redis | RedisCluster") -> None:
    """Waits until the server has fsynced what this connection wrote (when it has AOF on)."""
    try:
        local, _ = transport.command(
            client, "WAITAOF", 1, 0, int(transport.COMMAND_TIMEOUT * 1000) // 2
        )
    except redis.ResponseError:  # AOF off, or a server without WAITAOF: nothing to wait for
        return
    if int(local) < 1:
        raise BackupError("the target did not confirm the restored data on disk (WAITAOF)")
