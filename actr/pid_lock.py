"""An exclusive lock on a file for the life of a process, with the holder's pid inside.

``fcntl.flock`` on the lock file: the kernel drops it when the process dies, so a
crash leaves no stale lock, and a second opener learns who holds it from the pid
written in the file. Used for a daemon's data directory (actr/data_dir.py) and a
signaling server's serial file (signaling/serials.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

__all__ = ["LockHeld", "PidLock"]


class LockHeld(Exception):
    """Another process holds the lock; ``pid`` when it wrote one."""

    def __init__(self, path: Path, pid: int | None) -> None:
        super().__init__(f"{path} is locked by pid {pid}")
        self.path = path
        self.pid = pid


class PidLock:
    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path, mode: int = 0o600) -> PidLock:
        """Locks ``path`` (created ``mode`` if missing) or raises LockHeld (OSError when
        the file cannot be opened)."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise LockHeld(path, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # The pid goes first, so a reader never sees a stale one for a free lock.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor releases the flock


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
