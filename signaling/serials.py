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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

from signaling.config_values import ConfigError

__all__ = ["BLOCK", "SerialBook", "clock_floor", "serial_file_for"]

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
