"""The backup file format alone (service/backup/fileformat.py): written and read back with no
server, and every damaged or foreign file refused by the reader."""

import os
from pathlib import Path

import pytest

from service import backup
from service.backup.fileformat import batches, verify

RECORDS = [
    (b"l7:{p1}:key:A", 0, b"\x00payload-a"),
    (b"l7:{p1}:key:B", 1_900_000_000_000, b"payload-b" * 100),
    (b"l7:session:{abc}", 0, b"s"),  # a family never restored: still a valid record
]


def _write(path: Path, records: list[tuple[bytes, int, bytes]]) -> int:
    out = backup.BackupWriter(path, {"format": backup.FORMAT, "consistency": "per-key"})
    for key, expire_ms, payload in records:
        out.record(key, expire_ms, payload)
    return out.commit()


def _read(path: Path) -> list[tuple[bytes, int, bytes]]:
    with backup.BackupReader(path) as reader:
        return [(r.key, r.expire_ms, r.payload) for r in reader.records()]


def test_what_is_written_is_read_back(tmp_path: Path) -> None:
    file = tmp_path / "b.l7b"
    old = os.umask(0o022)
    try:
        size = _write(file, RECORDS)
    finally:
        os.umask(old)
    assert size == file.stat().st_size
    assert file.stat().st_mode & 0o777 == 0o600, "it holds every key and secret"
    assert file.read_bytes().startswith(backup.MAGIC)
    assert list(tmp_path.iterdir()) == [file], "no temporary file left"
    with backup.BackupReader(file) as reader:
        assert reader.header == {"format": backup.FORMAT, "consistency": "per-key"}
    assert _read(file) == RECORDS

    empty = tmp_path / "empty.l7b"
    _write(empty, [])
    assert _read(empty) == []


def test_an_aborted_write_leaves_the_previous_file(tmp_path: Path) -> None:
    file = tmp_path / "b.l7b"
    file.write_bytes(b"yesterday's backup")
    out = backup.BackupWriter(file, {"format": backup.FORMAT})
    out.record(b"l7:x", 0, b"y")
    out.abort()
    assert file.read_bytes() == b"yesterday's backup"
    assert list(tmp_path.iterdir()) == [file]


def test_every_truncation_and_every_flipped_byte_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.l7b"
    _write(good, RECORDS[:2])
    raw = good.read_bytes()
    bad = tmp_path / "bad.l7b"
    for cut in range(len(raw)):
        bad.write_bytes(raw[:cut])
        with pytest.raises(backup.BadBackupFile):
            _read(bad)
    for at in range(len(raw)):
        bad.write_bytes(raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :])
        with pytest.raises(backup.BadBackupFile):
            _read(bad)
    bad.write_bytes(raw + b"\x00")
    with pytest.raises(backup.BadBackupFile, match="data after the end marker"):
        _read(bad)


def test_only_a_regular_file_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(backup.BackupError, match="not a regular file"):
        backup.BackupReader(fifo)  # refused at once, without waiting for a writer
    with pytest.raises(backup.BackupError, match="cannot read"):
        backup.BackupReader(tmp_path / "missing.l7b")


def test_verify_refuses_a_foreign_key_and_its_digests_match_a_second_pass(
    tmp_path: Path,
) -> None:
    file = tmp_path / "b.l7b"
    many = [(b"l7:{p}:key:%d" % i, 0, b"v%d" % i) for i in range(2 * backup.BATCH + 10)]
    _write(file, many)
    with backup.BackupReader(file) as reader:
        digests = verify(reader)
        assert len(digests) == 3  # two full batches, then the rest after the end marker
        reader.rewind()
        again = list(batches(reader))
    assert [d for _, d in again] == digests
    assert [len(b) for b, _ in again] == [backup.BATCH, backup.BATCH, 10]

    _write(file, [*many, (b"other:thing", 0, b"x")])
    with backup.BackupReader(file) as reader, pytest.raises(backup.ForeignKey, match="other:thing"):
        verify(reader)
