"""Which handed-out rows a handler started: a small append-only file beside the
mailbox (``<mailbox file>.started``), so that in-flight marks need not cost a
transaction each.

The scheduler takes rows ahead of its handlers (several marked in flight by one
commit); a row marked in flight is not yet a row being handled. Before a handler
starts, the row's (seq, attempt) is appended here: one ``write`` to the page
cache, ~2 us, no fsync. After a crash, recovery counts a failure (MBX-4) only for
rows in flight *and* started in their current attempt; the others never ran and
go back to the queue with their attempt given back (``MailboxCore.recover``).

What it survives: a process crash (the kernel keeps what was written). A power
loss may lose the file's tail: a row that was running is then redelivered
without counting that attempt as a failure (it was the power, not the request).
A missing file (one made before this existed) means "every in-flight row
started", the conservative reading. The file grows by 12 bytes per handled row
and is rewritten with the rows still running once it passes ``max_bytes``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from pathlib import Path

__all__ = ["ENTRY", "StartJournal", "journal_path"]

log = logging.getLogger(__name__)

ENTRY = struct.Struct(">QI")  # seq, attempt (the row's attempts when handed out)
# An entry with this bit set in its attempt withdraws the entry without it: the row
# was given back unstarted with its attempt (``release``), so that attempt number
# will be handed out again.
RELEASED = 0x8000_0000


def journal_path(mailbox: Path) -> Path:
    return mailbox.with_name(mailbox.name + ".started")


class StartJournal:
    def __init__(self, path: Path, *, max_bytes: int = 1 << 20) -> None:
        """Opens the journal empty: call it after recovery has read the old one."""
        self.path = path
        self.max_bytes = max_bytes
        self._live: dict[int, int] = {}  # rows started and not done: seq -> attempt
        self._fd = self._open(path, truncate=True)
        self._size = 0
        self.rewrites = 0
        self.failed = False  # a write failed: the file is gone, recovery counts all

    @staticmethod
    def _open(path: Path, *, truncate: bool) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        return os.open(path, flags, 0o600)

    @staticmethod
    def read(path: Path) -> set[tuple[int, int]] | None:
        """The (seq, attempt) entries of a journal; None when there is no file. A torn
        last entry (power loss) is left out."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        whole = len(data) - len(data) % ENTRY.size
        entries = [ENTRY.unpack_from(data, i) for i in range(0, whole, ENTRY.size)]
        started = {(seq, attempt) for seq, attempt in entries if not attempt & RELEASED}
        released = {(seq, attempt & ~RELEASED) for seq, attempt in entries if attempt & RELEASED}
        return started - released

    def started(self, seq: int, attempt: int) -> None:
        """Records that a handler is about to run this row (before it runs)."""
        self.started_many([(seq, attempt)])

    def started_many(self, rows: list[tuple[int, int]]) -> None:
        """``started`` for several rows, in one write. Never raises (below)."""
        self._live.update(rows)
        self._write(b"".join(ENTRY.pack(seq, attempt) for seq, attempt in rows))

    def release(self, seq: int) -> None:
        """A row recorded as started goes back unstarted, its attempt given back (a
        pulled row requeued unrun): its entry must not match its next hand-out."""
        attempt = self._live.pop(seq, None)
        if attempt is not None:
            self._write(ENTRY.pack(seq, attempt | RELEASED))

    def _write(self, data: bytes) -> None:
        """Appends; a failure (disk full, I/O error) must not stop a handler or a
        batch: the file is removed instead, so the next start counts every in-flight
        row as started (the cautious reading), and nothing more is written."""
        if self.failed:
            return
        try:
            os.write(self._fd, data)
            self._size += len(data)
            if self._size > self.max_bytes:
                self._rewrite()
        except OSError as e:
            self.failed = True
            log.error("start_journal_failed path=%s error=%r counting=all_in_flight", self.path, e)
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def done(self, seq: int) -> None:
        """The row left flight (acked, put back, failed, buried): its entry is only
        kept until the next rewrite."""
        self._live.pop(seq, None)

    def _rewrite(self) -> None:
        """Replaces the file by one holding the rows still running (atomic rename)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            body = b"".join(ENTRY.pack(s, a) for s, a in self._live.items())
            os.write(fd, body)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        os.close(self._fd)
        self._fd = self._open(self.path, truncate=False)
        self._size = len(body)
        self.rewrites += 1
        log.debug("start_journal_rewritten live=%d", len(self._live))

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
