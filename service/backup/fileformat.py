"""The backup file: pure I/O, no server. ``BackupWriter`` writes one atomically,
``BackupReader`` reads one back, ``verify`` and ``batches`` are restore's two passes over it.

The file: ``MAGIC``, ``_HEAD``, the header (JSON: format, created_at, consistency, source,
server); per key "K", ``_KEY``, the key, ``_VALUE``, the ``DUMP`` payload; then "E", ``_END``
and the SHA-256 of every byte before it. Integers are big-endian.
"""

import contextlib
import hashlib
import os
import stat
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from service.backup.errors import BackupError, BadBackupFile, ForeignKey
from store import keyspace

MAGIC = b"LEAF7BAK"
FORMAT = 1
BATCH = 500  # keys per SCAN / pipelined DUMP round trip / pipelined RESTORE batch
BATCH_BYTES = 8 << 20  # a RESTORE batch is also cut at this many payload bytes

_HEAD = struct.Struct(">HI")  # format version, header length
_KEY = struct.Struct(">I")  # key length
_VALUE = struct.Struct(">QI")  # expiry (unix ms, 0 = none), payload length
_END = struct.Struct(">Q")  # record count
_MAX_HEADER = 1 << 20
_MAX_KEY = 512 << 20  # Redis' own limit on a key name


class BackupWriter:
    """Writes the file atomically: a temporary file next to ``path`` (created mode 0600 by
    ``mkstemp``, whatever the umask: it holds every key and secret), fsynced and renamed over
    ``path`` only once the end marker is written; removed on any failure."""

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
    checksum is known only at the end: see ``batches``). ``rewind()`` reads the records again
    from the same open file; ``cut()`` is the SHA-256 of the bytes read since the last cut."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = _open_regular(path)
        self.size = os.fstat(self.file.fileno()).st_size
        self.pos = 0
        self.digest = hashlib.sha256()
        self.span = hashlib.sha256()
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
        self.start, self._after_header = self.pos, self.digest.copy()
        self.span = hashlib.sha256()  # the records' bytes only

    def rewind(self) -> None:
        self.file.seek(self.start)
        self.pos, self.digest, self.span = self.start, self._after_header.copy(), hashlib.sha256()

    def cut(self) -> bytes:
        digest, self.span = self.span.digest(), hashlib.sha256()
        return digest

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
        self.span.update(data)
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


def _open_regular(path: Path) -> IO[bytes]:
    """The file, open for reading, if it is a regular file (it is read twice: a pipe or a
    device is refused, and opening a FIFO does not wait for a writer)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BackupError(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=1 << 20)


def batches(reader: BackupReader) -> Iterator[tuple[list[Record], bytes]]:
    """The file's records in restore batches (``BATCH`` records, or fewer that reach
    ``BATCH_BYTES`` of payload), each with the SHA-256 of its bytes in the file. The last one
    (maybe empty) comes once the end marker and the checksum are verified."""
    batch: list[Record] = []
    size = 0
    for record in reader.records():
        batch.append(record)
        size += len(record.payload)
        if len(batch) >= BATCH or size >= BATCH_BYTES:
            yield batch, reader.cut()
            batch, size = [], 0
    yield batch, reader.cut()


def verify(reader: BackupReader) -> list[bytes]:
    """Restore's first pass: the whole file verified (structure, count, checksum, every key
    name in leaf7's keyspace), or ``BadBackupFile``; the SHA-256 of each batch's bytes."""
    digests = []
    for batch, digest in batches(reader):
        for record in batch:
            if keyspace.backup_family(record.key) == "foreign":
                name = record.key[:80].decode(errors="replace")
                raise ForeignKey(
                    f"{reader.path} holds a key outside leaf7's keyspace ({name!r}): not a "
                    "file leaf7 wrote; nothing restored"
                )
        digests.append(digest)
    return digests
