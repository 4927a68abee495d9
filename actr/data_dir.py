"""A daemon's data directory: owner-only modes, and one daemon at a time.

The directory holds the mailbox (request payloads, stored answers) and the
identity (the renewal token that keeps the daemon's ActrId), so it is created
0700 and its files 0600; a directory or file found looser is tightened, with a
log line. A daemon holds an exclusive ``flock`` on ``daemon.lock`` inside it for
as long as it runs, with its pid written in the file: a second daemon on the
same directory (which would fight the first over one ActrId and mailbox) fails
with ``DataDirInUse`` naming the directory and that pid. The lock dies with its
process, so a crash never leaves a stale lock behind.

The ``actr mailbox`` / ``actr dlq`` tools do not take the lock: they work on a
running daemon's mailbox through SQLite's own locking.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

from actr.pid_lock import LockHeld, PidLock

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
LOCK_NAME = "daemon.lock"
# Files the runtime writes in the data directory: the mailbox and its SQLite
# companions, the identity and its temporary copy, the lock.
OWN_FILES = (
    "mailbox.db",
    "mailbox.db-wal",
    "mailbox.db-shm",
    "mailbox.db-journal",
    "mailbox.db.started",  # actr/mailbox_journal.py
    "mailbox.db.started.tmp",
    "identity.pb",
    "identity.tmp",
    LOCK_NAME,
)


class DataDirInUse(Exception):
    """Another process holds the data directory's lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "a process whose pid it did not record"
        super().__init__(
            f"data directory {path} is in use by another daemon ({holder}); "
            "stop it first, or give this daemon its own [actor] data_dir"
        )
        self.path = path
        self.pid = pid


def tighten(path: Path, mode: int) -> bool:
    """Takes away from ``path`` every permission bit ``mode`` does not have; True if
    it did. A path that does not exist is left alone."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if not current & ~mode:
        return False
    os.chmod(path, current & mode)
    log.warning("data_dir_mode_tightened path=%s old=%o new=%o", path, current, current & mode)
    return True


def prepare(path: Path) -> None:
    """Creates ``path`` 0700 (its missing parents get the usual modes), or tightens
    it and the runtime's files in it when they are open to group or others."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"data directory {path} exists and is not a directory")
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=DIR_MODE)
        log.info("data_dir_created path=%s", path)
    # mkdir's mode is filtered by the umask, which may only take bits away; an
    # existing directory may be anything.
    tighten(path, DIR_MODE)
    for name in OWN_FILES:
        tighten(path / name, FILE_MODE)


def create_private(path: Path) -> None:
    """Creates ``path`` empty with mode 0600 unless it exists (SQLite gives a
    database's -wal and -shm files the database file's mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


class DataDirLock:
    """The exclusive lock of one data directory, held until ``release``."""

    def __init__(self, path: Path, lock: PidLock) -> None:
        self.path = path
        self._lock = lock

    @classmethod
    def acquire(cls, path: Path) -> DataDirLock:
        """Locks ``path`` (a prepared data directory) or raises DataDirInUse."""
        try:
            lock = PidLock.acquire(path / LOCK_NAME, FILE_MODE)
        except LockHeld as e:
            raise DataDirInUse(path, e.pid) from None
        log.info("data_dir_locked path=%s pid=%d", path, os.getpid())
        return cls(path, lock)

    @property
    def held(self) -> bool:
        return self._lock.held

    def release(self) -> None:
        if self._lock.held:
            self._lock.release()
            log.info("data_dir_unlocked path=%s", self.path)
