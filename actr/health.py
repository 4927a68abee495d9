"""What a daemon's ``/healthz`` and ``/readyz`` say (served by actr/ops_http.py).

Healthy (``/healthz`` 200) when all of these hold, else 503 with each that fails:

- it is registered with the signaling server, and the server has not been out of
  reach for ``[admin] signaling_grace`` seconds or more (peer connections outlive
  an outage and the client reconnects alone, so a short one is no fault);
- its mailbox is writable: a transaction commits on the file, and the file may
  still grow by one request of the largest size the daemon accepts
  (``[limits] max_message_size``), both on the filesystem and within SQLite's
  page budget. A full disk refuses every larger request (UNAVAILABLE) long
  before it refuses the small ones, so "has room for any request" is what is
  asked, not "the last write happened to fit".

Ready (``/readyz`` 200) once started, while not stopping, and while the
signaling socket is up (callers find the actor through it).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["DownClock", "mailbox_problem", "readiness_problem", "signaling_problem"]

_PROBE_TABLE = "actr_health_probe"


def signaling_problem(*, registered: bool, down_for: float | None, grace: float) -> str | None:
    if not registered:
        return "not registered with the signaling server"
    if down_for is not None and down_for >= grace:
        return f"signaling server out of reach for {down_for:.0f}s (grace {grace:g}s)"
    return None


def readiness_problem(*, started: bool, stopping: bool, connected: bool) -> str | None:
    if stopping:
        return "stopping"
    if not started:
        return "starting"
    if not connected:
        return "signaling socket down"
    return None


def mailbox_problem(db: sqlite3.Connection, directory: Path, reserve: int) -> str | None:
    """Runs on the mailbox connection's own thread (``SqliteThread.call``), between the
    mailbox's batches: None when the mailbox can take a request of ``reserve`` bytes."""
    try:
        page_size, pages, free, most = (
            int(db.execute(f"PRAGMA {name}").fetchone()[0])
            for name in ("page_size", "page_count", "freelist_count", "max_page_count")
        )
        room = (most - pages + free) * page_size
        if room < reserve:
            return f"mailbox full: room for {room} bytes (page limit), a request may take {reserve}"
        fs = os.statvfs(directory)
        disk = fs.f_bavail * fs.f_frsize
        if disk < reserve:
            return f"disk full: {disk} bytes free under {directory}, a request may take {reserve}"
        # A write that allocates a page and commits (a WAL frame): a read-only or failing
        # file says so here. Nothing of it stays, and no row of the mailbox is touched.
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(f"CREATE TABLE {_PROBE_TABLE} (x)")
            db.execute(f"DROP TABLE {_PROBE_TABLE}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    except (sqlite3.Error, OSError) as e:
        return f"mailbox cannot commit: {e}"
    return None


class DownClock:
    """Since when the signaling socket has been down, from its connected/disconnected
    events (``run`` is a task for the daemon's lifetime)."""

    def __init__(
        self,
        connected: asyncio.Event,
        disconnected: asyncio.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connected = connected
        self._disconnected = disconnected
        self._clock = clock
        self.since: float | None = None if connected.is_set() else clock()

    async def run(self) -> None:
        while True:
            if self._connected.is_set():
                self.since = None
                await self._disconnected.wait()
            else:
                if self.since is None:
                    self.since = self._clock()
                await self._connected.wait()

    def down_for(self) -> float | None:
        """Seconds down, None while up (also before ``run`` has seen it come up)."""
        if self._connected.is_set() or self.since is None:
            return None
        return self._clock() - self.since
