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

Only leaf7's keyspace is backed up and restored (store/keyspace.py ``backup_family``): names
under ``l7:``, less the families never restored (dashboard sessions, rate-limit windows). A
file is trusted no further than that: restore opens it once and reads it twice from that open
file. The first pass verifies the whole file (structure, count, checksum, every key name: one
name outside leaf7's keyspace refuses the file) and notes the SHA-256 of each batch's bytes;
nothing is written before it ends. The second pass writes a batch only once its bytes are
found equal to those verified (a file changed meanwhile stops the restore, and nothing
unverified is written). A target that holds any key is refused unless ``force`` is given;
every record is loaded with ``RESTORE <key> <expiry> <payload> REPLACE ABSTTL``: the same
absolute expiry time, to the millisecond; a key whose time has passed meanwhile is skipped (it
would be gone already). On the embedded Valkey that goes through the running server, so it
lands in the AOF (which is what that server loads when it starts), confirmed with
``WAITAOF``.

The modules, by job: ``fileformat`` (the file: pure I/O, no server), ``transport``
(connecting to ``REDIS_URL``), ``snapshot`` (the embedded Valkey's point-in-time copy),
``commands`` (``backup`` and ``restore``); ``errors``. The names below are the package's.
"""

from service.backup.commands import BackupResult, RestoreResult, backup, restore
from service.backup.errors import BackupError, BadBackupFile, ForeignKey, TargetNotEmpty
from service.backup.fileformat import (
    BATCH,
    BATCH_BYTES,
    FORMAT,
    MAGIC,
    BackupReader,
    BackupWriter,
    Record,
)
from service.backup.snapshot import SNAPSHOT_TIMEOUT
from service.backup.transport import COMMAND_TIMEOUT, SENTINEL_TIMEOUT

__all__ = [
    "BATCH",
    "BATCH_BYTES",
    "COMMAND_TIMEOUT",
    "FORMAT",
    "MAGIC",
    "SENTINEL_TIMEOUT",
    "SNAPSHOT_TIMEOUT",
    "BackupError",
    "BackupReader",
    "BackupResult",
    "BackupWriter",
    "BadBackupFile",
    "ForeignKey",
    "Record",
    "RestoreResult",
    "TargetNotEmpty",
    "backup",
    "restore",
]
