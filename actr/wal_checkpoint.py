"""WAL checkpoints off the event loop, for the mailbox that commits on it.

SQLite's automatic checkpoint runs inside the COMMIT that crosses
``wal_autocheckpoint`` pages: it copies the WAL into the database file and, with
synchronous=NORMAL, fsyncs it. On the loop's thread that is a 1-13 ms stall every
few hundred commits (measured here: a commit's median 23 us, its mean 81 us
because of them). So the mailbox's connection turns the automatic checkpoint
off and this thread, on a connection of its own, runs a PASSIVE checkpoint (it
never blocks a writer) once enough commits have gathered or a while has passed.
Readers and the one writer go on meanwhile: that is what WAL is for.

A WAL starts over only once every frame in it is copied, which a checkpoint on
another thread never sees while commits keep coming. So once ``restart_every``
commits have gathered, after the thread's next checkpoint, the loop's connection
runs one more (``catch_up``, after a commit): only the frames committed
meanwhile are left to copy (~1 ms with its two fsyncs, against the 1-13 ms of a
whole one), and the next commit starts the WAL over. Rarely: the WAL grows to a
few tens of MiB between restarts, and a request meets the ~1 ms once in ~1,000.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

__all__ = ["Checkpointer"]

log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(
        self, path: Path, *, every: int = 256, interval: float = 1.0, restart_every: int = 2048
    ) -> None:
        """``every``: commits between checkpoints; ``interval``: seconds at most
        between checkpoints while commits come; ``restart_every``: commits between
        the loop's catch-ups, which let the WAL start over."""
        self.path = path
        self.every = every
        self.interval = interval
        self.checkpoints = 0
        self.failures = 0
        self.dead = False  # the thread could not start: SQLite checkpoints again
        self._fallback = False
        self._since = 0  # commits since the last nudge to the thread
        self._dirty = False
        self._caught_up = True  # the loop's connection owes no catch-up checkpoint
        self.restart_every = restart_every
        self._until_restart = restart_every  # commits before the next catch-up is due
        self._wake = threading.Event()
        self.checkpointed = threading.Event()  # set after each checkpoint (tests)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="actr-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """One commit more (the loop's thread; cheap: no lock unless it wakes)."""
        self._dirty = True
        self._since += 1
        self._until_restart -= 1
        if self._since >= self.every:
            self._since = 0
            self._wake.set()

    def catch_up(self, db: sqlite3.Connection) -> None:
        """On the loop's connection, after a commit: copies the frames committed since
        the thread's last checkpoint, so that the next commit restarts the WAL."""
        if self.dead:
            if not self._fallback:
                # Without the thread nothing would checkpoint and the WAL would grow
                # without bound: SQLite's automatic checkpoint (on this loop) again.
                self._fallback = True
                db.execute("PRAGMA wal_autocheckpoint=1000")
                log.error("wal_checkpoint_thread_dead path=%s fallback=autocheckpoint", self.path)
            return
        if self._caught_up or self._until_restart > 0:
            return
        self._caught_up = True
        self._until_restart = self.restart_every
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as e:
            self.failures += 1
            log.warning("wal_catch_up_failed path=%s error=%r", self.path, e)

    def _run(self) -> None:
        try:
            db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout=1000")
        except Exception as e:
            log.error("wal_checkpoint_thread_failed path=%s error=%r", self.path, e)
            self.dead = True
            return
        try:
            while True:
                self._wake.wait(self.interval)
                self._wake.clear()
                if self._stop:
                    return
                if not self._dirty:
                    continue
                self._dirty = False
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                    self._caught_up = False
                    self.checkpointed.set()
                except sqlite3.Error as e:
                    # The next one tries again; the WAL only grows meanwhile.
                    self.failures += 1
                    log.warning("wal_checkpoint_failed path=%s error=%r", self.path, e)
        finally:
            self.dead = not self._stop  # ended by anything but close(): fall back
            db.close()

    def close(self) -> None:
        """Stops the thread (the mailbox's own close checkpoints what is left)."""
        self._stop = True
        self._wake.set()
        self._thread.join()
