"""What a backup or a restore fails with (the CLI prints the message, exit status 1)."""


class BackupError(Exception):
    """The backup cannot be made or restored (a bad file, a server that refuses)."""


class BadBackupFile(BackupError):
    """Not a complete, intact leaf7 backup file."""


class ForeignKey(BadBackupFile):
    """Restore refused: the file holds a key name outside leaf7's keyspace."""


class TargetNotEmpty(BackupError):
    """Restore refused: the target already holds keys (and ``force`` was not given)."""
