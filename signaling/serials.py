"""Serial numbers that are never handed out twice (PROTOCOL.md ID-2; issue 11, F1).

A credential names its actor by ActrId, serial included, and keeps verifying
after a restart when the signing key is kept (``signing_key_file``). A serial
handed out again after a restart would make every credential issued for the
old holder a credential of the new one. So serials only grow, across restarts
and nodes:

- Each boot starts above a floor taken from the clock, ``unix seconds << 16``
  (``clock_floor``): above every serial an earlier boot handed out unless it
  handed out 65,536 a second for its whole life, or the clock went back.
- Against a clock that went back, the server writes a high-water mark to a
  small file next to ``signing_key_file`` (``<key file>.serials``), fsynced
  before any serial under it is handed out, in blocks of ``BLOCK``: after a
  restart it continues above the mark. Without a key file the signing key dies
  with the process, and so do its credentials: no file is needed.
- With Redis (SIG-10) the cluster allocates with INCR, raised to the clock
  floor whenever it is below it (a Redis that lost its keys starts above every
  serial it had handed out).
- Two servers without Redis on one key file would each count from the same mark
  and hand out the same serials. A server holds an exclusive ``flock`` on
  ``<key file>.serials.lock`` (its pid inside) for its whole life
  (``SerialsLock``); a second one on the same file refuses to start
  (``SerialsInUse``, a ConfigError: exit 2). The lock is a file of its own
  because the mark is replaced by a rename on every write, and a lock on the
  replaced file would guard nothing. It dies with its process: a crash leaves no
  stale lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

from actr.pid_lock import LockHeld, PidLock
from signaling.config_values import ConfigError

__all__ = [
    "BLOCK",
    "SerialBook",
    "SerialsInUse",
    "SerialsLock",
    "clock_floor",
    "serial_file_for",
]

log = logging.getLogger(__name__)

# Serials reserved per write of the high-water mark.
BLOCK = 1024
FLOOR_SHIFT = 16


def clock_floor(now: float) -> int:
    """The lowest serial a server may hand out at ``now`` (unix seconds)."""
    return max(1, int(now) << FLOOR_SHIFT)


def serial_file_for(signing_key_file: Path | None) -> Path | None:
    if signing_key_file is None:
        return None
    return signing_key_file.with_name(signing_key_file.name + ".serials")


class SerialsInUse(ConfigError):
    """Another process holds the serial file's lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "a process whose pid it did not record"
        super().__init__(
            f"serial file {path} is in use by another signaling server ({holder}): two servers "
            "without Redis on one signing_key_file would hand out the same serials; stop it, "
            "give this server its own signing_key_file, or share state through redis_url"
        )
        self.path = path
        self.pid = pid


class SerialsLock:
    """The exclusive lock of one serial file, held until ``release``."""

    def __init__(self, path: Path, lock: PidLock) -> None:
        self.path = path
        self._lock = lock

    @classmethod
    def acquire(cls, serial_file: Path) -> SerialsLock:
        """Locks ``serial_file`` (through ``<serial_file>.lock``) or raises SerialsInUse;
        ConfigError when the lock file cannot be opened."""
        path = serial_file.with_name(serial_file.name + ".lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = PidLock.acquire(path)
        except LockHeld as e:
            log.error("serials_in_use file=%s holder_pid=%s", serial_file, e.pid)
            raise SerialsInUse(serial_file, e.pid) from None
        except OSError as e:
            raise ConfigError(f"cannot open lock file {path}: {e.strerror or e}") from None
        log.info("serials_locked file=%s pid=%d", serial_file, os.getpid())
        return cls(path, lock)

    @property
    def held(self) -> bool:
        return self._lock.held

    def release(self) -> None:
        if self._lock.held:
            self._lock.release()
            log.info("serials_unlocked file=%s", self.path)


class SerialBook:
    """Serials of one server without Redis: per realm, counting up from the boot's floor.

    ``path`` None: nothing is written (the signing key is not kept either).
    """

    def __init__(self, path: Path | None, now: float) -> None:
        self.path = path
        self._next: dict[int, int] = {}
        self._lock = asyncio.Lock()
        start = clock_floor(now)
        mark = self._read() if path is not None else 0
        self._start = max(start, mark)
        self._reserved = self._start
        if path is not None:
            # Fail at start, not at the first registration, when the mark cannot be written.
            self._reserved = self._start + BLOCK
            self._write(self._reserved)
        log.info(
            "serials_start first=%d high_water_file=%s high_water=%d",
            self._start,
            path,
            mark,
        )

    @property
    def reserved(self) -> int:
        """Serials below this may have been handed out (with a file: it says so)."""
        return self._reserved

    async def next(self, realm_id: int) -> int:
        async with self._lock:
            serial = self._next.get(realm_id, self._start)
            if self.path is not None and serial >= self._reserved:
                mark = serial + BLOCK
                await asyncio.to_thread(self._write, mark)
                self._reserved = mark
            self._next[realm_id] = serial + 1
            return serial

    def _read(self) -> int:
        assert self.path is not None
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return 0
        except OSError as e:
            raise ConfigError(f"cannot read serial file {self.path}: {e.strerror or e}") from None
        try:
            mark = int(json.loads(raw)["high_water"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"serial file {self.path} is damaged; it must hold the highest serial handed "
                f'out, as {{"high_water": N}}: restore it, or remove it to start above the '
                "clock's floor"
            ) from None
        return mark

    def _write(self, mark: int) -> None:
        """Durably: the data, then the rename, then the folder, each fsynced."""
        assert self.path is not None
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps({"high_water": mark}) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ConfigError(f"cannot write serial file {self.path}: {e.strerror or e}") from None
