"""The enqueue half of a mailbox batch (``actr.mailbox_rules``), synchronous and
without asyncio: the duplicate check (ENV-6), the bound (MBX-5), and the insert.

When nothing older is queued, the rows the batch's dequeue would take at once go
in already in flight (attempt 1): the hand-out then costs no UPDATE, and no entry
in the ready index is added and removed again. That is the hot path of a call to
an idle actor; the row is still committed before any handler sees it (MBX-1).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from actr.errors import ResourceExhausted
from actr.mailbox_ops import _DUPLICATE_PENDING, _QUEUED, EnqueueResult, MailboxLimits, Outcome
from actr.mailbox_queue import ReadyQueue
from actr.mailbox_store import COLUMNS, IN_FLIGHT, MailboxRecord, execute_rows, lookup

__all__ = ["EnqueueRules"]

_Record = MailboxRecord._make

# The enqueue: a request answered within the window is not inserted (ENV-6); the
# common case, no such duplicate, costs no lookup. Rows go in in the order given
# (FIFO): a VALUES list is read in order.
_INSERT = f"INSERT OR IGNORE INTO messages ({COLUMNS}) SELECT * FROM (VALUES "
_INSERT_FLYING = (
    f"INSERT OR IGNORE INTO messages ({COLUMNS}, state) SELECT *, {IN_FLIGHT} FROM (VALUES "
)
_UNANSWERED = (
    ") AS v WHERE NOT EXISTS (SELECT 1 FROM answers AS a WHERE a.caller = v.column3"
    " AND a.request_id = v.column4 AND a.answered_at >= v.column8 - ?)"
)


def _split(
    rows: list[MailboxRecord], direct: int
) -> tuple[list[MailboxRecord], list[MailboxRecord]]:
    """(the best ``direct`` rows as attempt 1, in the order they are handed out:
    priority, then seq; the others, in seq order)."""
    if direct <= 0:  # a dequeue of nothing (or less) takes nothing
        return [], rows
    if all(r[1] == rows[0][1] for r in rows):
        best, rest = rows[:direct], rows[direct:]
    else:
        ranked = sorted(rows, key=lambda r: (r[1], r[0]))
        best, rest = ranked[:direct], sorted(ranked[direct:], key=lambda r: r[0])
    return [_Record((*r[:6], 1, r[7])) for r in best], rest


class EnqueueRules:
    """``MailboxCore``'s enqueue: the state it reads and keeps."""

    limits: MailboxLimits
    queue: ReadyQueue
    _keys: set[tuple[str, str]]
    _next_seq: int

    def _enqueue(
        self,
        db: sqlite3.Connection,
        ops: Sequence[Any],
        indexes: list[int],
        results: list[Any],
        count: int,
        size: int,
        direct: int,
        handed: list[MailboxRecord],
    ) -> tuple[int, int]:
        """Queues the batch's enqueues; the best ``direct`` of them (by priority, then
        seq) go in in flight, attempt 1, and are added to ``handed``."""
        pending = self._keys
        limits = self.limits
        max_messages, max_bytes = limits.max_messages, limits.max_bytes
        rows: list[MailboxRecord] = []
        taken: list[int] = []
        seq = self._next_seq
        for i in indexes:
            # Unpacked once (a NamedTuple's fields are properties): the hot loop.
            caller, request_id, priority, payload_type, envelope, now = ops[i]
            key = (caller, request_id)
            if key in pending:
                results[i] = _DUPLICATE_PENDING
                continue
            if count + 1 > max_messages or size + len(envelope) > max_bytes:
                results[i] = ResourceExhausted(
                    f"mailbox full ({count} messages, {size} bytes;"
                    f" bound {max_messages} messages, {max_bytes} bytes)"
                )
                continue
            pending.add(key)
            count += 1
            size += len(envelope)
            results[i] = _QUEUED
            taken.append(i)
            # The record (attempts 0) is both the statement's row and the queue's entry.
            rows.append(
                _Record((seq, priority, caller, request_id, payload_type, envelope, 0, now))
            )
            seq += 1
        self._next_seq = seq
        if not rows:
            return count, size
        window = limits.dedup_window
        flying, queued = _split(rows, direct)
        inserted = 0
        if flying:
            inserted = execute_rows(db, _INSERT_FLYING, _UNANSWERED, flying, (window,))
        if queued:
            inserted += execute_rows(db, _INSERT, _UNANSWERED, queued, (window,))
        went_in = None
        if inserted < len(rows):  # rare (below): which ones went in
            returned = db.execute(
                f"SELECT seq FROM messages WHERE seq >= {rows[0][0]} AND seq <= {rows[-1][0]}"
            ).fetchall()
            went_in = {seq for (seq,) in returned}
        handed.extend(flying if went_in is None else [r for r in flying if r[0] in went_in])
        # Into the queue in memory, in seq order.
        self.queue.add_new(queued if went_in is None else [r for r in queued if r[0] in went_in])
        if inserted < len(rows):
            # Rare: some were answered within the window. (A row queued by another
            # process cannot be the reason: the keys were reloaded when it committed,
            # and we hold the write lock since.)
            keys = [(ops[i].caller, ops[i].request_id) for i in taken]
            answered = lookup(
                db, "SELECT caller, request_id, answer, answered_at FROM answers", keys
            )
            for i, key in zip(taken, keys, strict=True):
                hit = answered.get(key)
                if hit is not None and hit[1] >= ops[i].now - window:
                    results[i] = EnqueueResult(Outcome.DUPLICATE_ANSWERED, answer=hit[0])
                    pending.discard(key)
                    count -= 1
                    size -= len(ops[i].envelope)
        return count, size
