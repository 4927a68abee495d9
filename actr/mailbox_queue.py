"""The head of the mailbox's queue, in memory: rows are handed out from here, not
read back from SQLite (the database is the log; this is the queue).

Synchronous and without asyncio, like ``actr.mailbox_rules`` whose batches drive
it: every change to it happens inside a batch's transaction, in the same order as
the change to the rows, and a batch that fails ``reset``s it (the next ``take``
loads what the database says).

Per priority, a deque of READY rows in seq order (FIFO, MBX-2). Memory is bounded
(``max_rows``, ``max_bytes``): once a priority's deque is full, later rows of that
priority stay on disk only and the priority is *spilled*: every row of it on disk
and not in memory has a larger seq than every row of it in memory, so the deque is
still the head of that priority. A spilled priority whose deque runs dry is
refilled by one query (the next ``refill`` rows by seq). A row put back (requeued,
a failed handling) is older than every row of its priority on disk only, so it
goes back into the deque at its place.
"""

from __future__ import annotations

import bisect
import sqlite3
from collections import deque

from actr.mailbox_store import COLUMNS, READY, MailboxRecord

__all__ = ["ReadyQueue"]


def _seq(r: MailboxRecord) -> int:
    return r.seq


class ReadyQueue:
    def __init__(
        self, max_rows: int = 4096, max_bytes: int = 16 * 1024 * 1024, refill: int = 256
    ) -> None:
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.refill = refill
        self._by_priority: dict[int, deque[MailboxRecord]] = {}
        self._spilled: set[int] = set()
        self._known = False  # False: nothing here is trusted; load from the database
        self.rows = 0
        self.bytes = 0

    def reset(self) -> None:
        """Forgets everything: the next ``take`` reads the database first (another
        process changed it, a batch failed, recovery or replay moved rows)."""
        self._by_priority.clear()
        self._spilled.clear()
        self._known = False
        self.rows = self.bytes = 0

    def has_ready(self) -> bool:
        """Whether a ``take`` may find something (True when unknown)."""
        return not self._known or self.rows > 0 or bool(self._spilled)

    def _load(self, db: sqlite3.Connection) -> None:
        # Every priority with READY rows starts spilled: its first take refills it.
        self.reset()
        found = db.execute("SELECT DISTINCT priority FROM messages WHERE state = ?", (READY,))
        self._spilled = {p for (p,) in found}
        self._known = True

    # -- rows in -------------------------------------------------------------------

    def add_new(self, records: list[MailboxRecord]) -> None:
        """Rows just queued, in seq order: each has the largest seq of its priority so
        far. (One call a batch: the enqueue path of every request.)"""
        if not self._known:
            return
        spilled, by_priority = self._spilled, self._by_priority
        rows, size = self.rows, self.bytes
        max_rows, max_bytes = self.max_rows, self.max_bytes
        for record in records:
            p = record[1]  # priority
            if p in spilled:
                continue
            n = len(record[5])  # envelope
            if rows >= max_rows or size + n > max_bytes:
                spilled.add(p)
                continue
            same = by_priority.get(p)
            if same is None:
                same = by_priority[p] = deque()
            same.append(record)
            rows += 1
            size += n
        self.rows, self.bytes = rows, size

    def put_back(self, record: MailboxRecord) -> None:
        """A row back to READY; older than any row of its priority on disk only."""
        if not self._known:
            return
        rows = self._by_priority.setdefault(record.priority, deque())
        rows.insert(bisect.bisect(rows, record.seq, key=_seq), record)
        self.rows += 1
        self.bytes += len(record.envelope)

    def discard(self, seq: int, priority: int) -> None:
        """A row that left the queue other than by ``take`` (rare: a tool's move)."""
        rows = self._by_priority.get(priority)
        if not rows:
            return
        for i, r in enumerate(rows):
            if r.seq == seq:
                del rows[i]
                self.rows -= 1
                self.bytes -= len(r.envelope)
                return

    # -- rows out ------------------------------------------------------------------

    def take(self, db: sqlite3.Connection, limit: int, suspects: set[int]) -> list[MailboxRecord]:
        """Up to ``limit`` rows, HIGH before NORMAL, FIFO within (MBX-2), removed from
        the queue (the caller marks them in flight in the same transaction). A suspect
        (a row a dead process left in flight) comes alone and ends the run before it."""
        if not self._known:
            self._load(db)
        out: list[MailboxRecord] = []
        if limit <= 0 or not self.has_ready():
            return out
        for p in sorted(self._by_priority.keys() | self._spilled):
            rows = self._by_priority.get(p)
            floor = -1  # refills skip what this take popped (not marked in flight yet)
            while len(out) < limit:
                if not rows:
                    if p not in self._spilled:
                        break
                    rows = self._refill(db, p, floor)
                    if not rows:
                        break
                first = rows[0]
                if first.seq in suspects:
                    if not out:
                        self._pop(rows)
                        out.append(first)
                    return out
                self._pop(rows)
                floor = first.seq
                out.append(first)
            if len(out) >= limit:
                break
        return out

    def _pop(self, rows: deque[MailboxRecord]) -> None:
        r = rows.popleft()
        self.rows -= 1
        self.bytes -= len(r.envelope)

    def _refill(self, db: sqlite3.Connection, priority: int, floor: int) -> deque[MailboxRecord]:
        found = db.execute(
            f"SELECT {COLUMNS} FROM messages WHERE state = ? AND priority = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (READY, priority, floor, self.refill),
        ).fetchall()
        if len(found) < self.refill:
            self._spilled.discard(priority)
        rows = self._by_priority.setdefault(priority, deque())
        for row in found:
            record = MailboxRecord._make(row)
            rows.append(record)
            self.rows += 1
            self.bytes += len(record.envelope)
        return rows
