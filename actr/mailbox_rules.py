"""The mailbox's batch logic, synchronous and without asyncio: what one group
commit does, on a plain ``sqlite3.Connection`` with time passed in.

``MailboxCore.apply(db, ops)`` runs a batch of operations (``Enqueue``,
``Dequeue``, ``Ack``, ``Requeue``, ``Fail``, ``Bury``, ``Prune``) in one
transaction and returns one result per operation: a value, or an exception for
that operation's caller alone. It keeps what the duplicate check and the bound
need in memory (the keys of the rows in ``messages``, their count and bytes) and
reloads it when another connection committed (``PRAGMA data_version``) or a batch
failed. ``actr.mailbox`` is the asyncio layer that gathers the batches; tests
drive this one directly (tests/unit/test_mailbox_rules.py).

PROTOCOL.md MBX-1..5 and ENV-6:
- an enqueue of a (caller, request_id) queued or in flight is DUPLICATE_PENDING;
  one answered within the dedup window is DUPLICATE_ANSWERED with the stored
  answer, and is not queued (ENV-6);
- past ``max_messages`` or ``max_bytes`` an enqueue is refused with
  ResourceExhausted (MBX-5);
- a dequeue marks rows in flight, HIGH before NORMAL, FIFO within (MBX-2); a row
  a dead process left in flight (``recover``) comes alone (MBX-4: it alone counts
  a failure if it kills the process again);
- an ack deletes the row and stores its answer in the same transaction (MBX-3);
- a failure counts towards ``max_attempts``, then the row is a dead letter; a
  duplicate of a dead letter is answered ``dead_letter_answer(envelope, reason)``,
  which the caller provides (MBX-4).

Within a batch: acks, dead letters, failures, put-backs, enqueues, prunes, then
dequeues, so a dequeue sees what the same batch queued.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from actr.errors import ResourceExhausted
from actr.mailbox_store import (
    COLUMNS,
    IN_FLIGHT,
    READY,
    AnswerFor,
    MailboxRecord,
    all_keys,
    bury,
    count_rows,
    execute_rows,
    lookup,
    record_order,
    replay_rows,
    seq_filter,
    transaction,
    untried_run,
)

__all__ = [
    "Ack",
    "Bury",
    "Dequeue",
    "Enqueue",
    "EnqueueResult",
    "Fail",
    "MailboxCore",
    "MailboxLimits",
    "Op",
    "Outcome",
    "Prune",
    "Requeue",
]


class Outcome(Enum):
    """What became of an enqueued request (the row states are ``RowState``)."""

    QUEUED = "queued"
    DUPLICATE_PENDING = "duplicate_pending"  # queued or running: not enqueued again
    DUPLICATE_ANSWERED = "duplicate_answered"  # answer the stored result


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    outcome: Outcome
    answer: bytes | None = None


_QUEUED = EnqueueResult(Outcome.QUEUED)
_DUPLICATE_PENDING = EnqueueResult(Outcome.DUPLICATE_PENDING)


@dataclass
class MailboxLimits:
    max_messages: int = 100_000
    max_bytes: int = 1024**3
    # The backpressure hook fires when the mailbox fills past this share of a
    # bound, and re-arms once it is back below.
    backpressure_at: float = 0.8
    max_attempts: int = 3
    dedup_window: float = 600.0


# -- the operations: each one's result is given after its name ---------------------


class Enqueue(NamedTuple):  # -> EnqueueResult, or ResourceExhausted
    caller: str
    request_id: str
    priority: int
    payload_type: int
    envelope: bytes
    now: float


class Dequeue(NamedTuple):  # -> list[MailboxRecord], maybe empty
    limit: int
    wait: bool = False  # the asyncio layer's (a long poll): ignored here


class Ack(NamedTuple):  # -> None
    record: MailboxRecord
    answer: bytes | None
    now: float


class Requeue(NamedTuple):  # -> None
    record: MailboxRecord
    started: bool  # False: no handler ran it, its attempt is given back


class Fail(NamedTuple):  # -> bool: it became a dead letter
    record: MailboxRecord
    reason: str
    now: float


class Bury(NamedTuple):  # -> None: to the dead letters at once
    record: MailboxRecord
    reason: str
    now: float


class Prune(NamedTuple):  # -> int: stored answers forgotten
    now: float


Op = Enqueue | Dequeue | Ack | Requeue | Fail | Bury | Prune


class MailboxCore:
    """The mailbox's state between batches and the rules of a batch."""

    def __init__(self, limits: MailboxLimits, dead_letter_answer: AnswerFor) -> None:
        self.limits = limits
        self.dead_letter_answer = dead_letter_answer
        # Rows in messages (queued and in flight) and their envelopes' bytes, as of
        # the last commit.
        self.count = 0
        self.bytes = 0
        self.commits = 0  # batches committed
        # (caller, request_id) of every row in messages: the duplicate check for
        # queued and running requests needs no query.
        self._keys: set[tuple[str, str]] = set()
        # Rows a dead process left in flight (found by recover) until they are done.
        self._suspects: set[int] = set()
        self._data_version = -1  # -1: what is in memory is not to be trusted

    def recovered(self, seq: int) -> bool:
        """Whether the row was in flight when a process died (it is handed out alone)."""
        return seq in self._suspects

    def load(self, db: sqlite3.Connection) -> None:
        """Reads the row count, size, keys and data version in one snapshot, so a
        commit by another process after it is seen by the first batch."""
        with transaction(db, "BEGIN"):
            self._data_version = db.execute("PRAGMA data_version").fetchone()[0]
            self.count, self.bytes = count_rows(db)
            self._keys = all_keys(db)

    def recover(self, db: sqlite3.Connection, now: float) -> tuple[int, int]:
        """MBX-3/MBX-4 at start: rows in flight when their process died count a
        failure and go back to the queue, or to the dead letters once they failed
        ``max_attempts`` times. Returns (put back, dead-lettered)."""
        attempts = self.limits.max_attempts
        with transaction(db):
            db.execute("UPDATE messages SET failures = failures + 1 WHERE state = ?", (IN_FLIGHT,))
            rows = db.execute(
                f"SELECT {COLUMNS} FROM messages WHERE state = ? AND failures >= ?",
                (IN_FLIGHT, attempts),
            ).fetchall()
            reason = (
                f"failed {attempts} times without an answer (the process died while handling it)"
            )
            bury(db, [MailboxRecord(*r) for r in rows], reason, now, self.dead_letter_answer)
            back = db.execute(
                "UPDATE messages SET state = ? WHERE state = ? RETURNING seq", (READY, IN_FLIGHT)
            ).fetchall()
        self._suspects = {seq for (seq,) in back}
        return len(back), len(rows)

    def replay(self, db: sqlite3.Connection, seqs: Iterable[int] | None) -> tuple[int, int]:
        """Dead letters (all, or these) back to the queue with a fresh count, except
        those answered for real meanwhile (dropped). Returns (moved, dropped)."""
        where, args = seq_filter(seqs)
        moved, skipped, keys, (count, size) = replay_rows(db, where, args)
        self._keys, self.count, self.bytes = keys, count, size
        return moved, skipped

    # -- a batch -----------------------------------------------------------------

    def apply(self, db: sqlite3.Connection, ops: Sequence[Op]) -> list[Any]:
        """Runs ``ops`` in one transaction and returns their results in order. If the
        transaction fails, it raises and nothing of it is kept."""
        results: list[Any] = [None] * len(ops)
        by_kind: dict[type, list[int]] = {}
        for i, op in enumerate(ops):
            by_kind.setdefault(type(op), []).append(i)
        try:
            with transaction(db):
                count, size = self._apply(db, ops, by_kind, results)
        except BaseException:
            # What this batch changed in memory (keys) is void: the next one reloads.
            self._data_version = -1
            raise
        self.count, self.bytes = count, size
        self.commits += 1
        return results

    def _apply(
        self,
        db: sqlite3.Connection,
        ops: Sequence[Any],
        by_kind: dict[type, list[int]],
        results: list[Any],
    ) -> tuple[int, int]:
        count, size = self.count, self.bytes
        if self._data_version_changed(db):
            # Another process (a dlq tool) committed, or a batch failed: what we
            # keep in memory is stale.
            self._keys = all_keys(db)
            count, size = count_rows(db)
        acks: list[Ack] = [ops[i] for i in by_kind.get(Ack, [])]
        gone = [a.record for a in acks]  # rows this batch removed
        recount = False
        if acks:
            execute_rows(
                db,
                "INSERT OR REPLACE INTO answers (caller, request_id, answer, answered_at) VALUES ",
                "",
                [(a.record.caller, a.record.request_id, a.answer, a.now) for a in acks],
            )
            removed = execute_rows(
                db, "DELETE FROM messages WHERE seq IN (", ")", [(a.record.seq,) for a in acks]
            )
            recount = removed != len(acks)
        answer_for = self.dead_letter_answer
        for i in by_kind.get(Bury, []):
            buried: Bury = ops[i]
            gone += bury(db, [buried.record], buried.reason, buried.now, answer_for)
        for i in by_kind.get(Fail, []):
            failing: Fail = ops[i]
            failed = db.execute(
                "UPDATE messages SET failures = failures + 1, state = ?"
                " WHERE seq = ? AND state = ? RETURNING failures",
                (READY, failing.record.seq, IN_FLIGHT),
            ).fetchone()
            dead = bool(failed and failed[0] >= self.limits.max_attempts)
            results[i] = dead
            if dead:
                text = f"failed {failed[0]} times, the last: {failing.reason}"
                gone += bury(db, [failing.record], text, failing.now, answer_for)
        keys = self._keys
        for record in gone:
            keys.discard((record.caller, record.request_id))
            self._suspects.discard(record.seq)
        if recount:
            # An ack found its row gone already (acked twice): read what is there.
            self._keys = all_keys(db)
            count, size = count_rows(db)
        else:
            count -= len(gone)
            size -= sum(len(record.envelope) for record in gone)

        requeues: list[Requeue] = [ops[i] for i in by_kind.get(Requeue, [])]
        if requeues:
            db.executemany(
                "UPDATE messages SET state = ?, attempts = attempts - ?"
                " WHERE seq = ? AND state = ?",
                [(READY, 0 if r.started else 1, r.record.seq, IN_FLIGHT) for r in requeues],
            )
        enqueues = by_kind.get(Enqueue)
        if enqueues:
            count, size = self._enqueue(db, ops, enqueues, results, count, size)
        for i in by_kind.get(Prune, []):
            cur = db.execute(
                "DELETE FROM answers WHERE answered_at < ?",
                (ops[i].now - self.limits.dedup_window,),
            )
            results[i] = cur.rowcount
        for i in by_kind.get(Dequeue, []):
            rows = db.execute(
                "UPDATE messages SET state = ?, attempts = attempts + 1 WHERE seq IN"
                " (SELECT seq FROM messages WHERE state = ? ORDER BY priority, seq LIMIT ?)"
                f" RETURNING {COLUMNS}",
                (IN_FLIGHT, READY, untried_run(db, ops[i].limit, self._suspects)),
            ).fetchall()
            results[i] = sorted(map(MailboxRecord._make, rows), key=record_order)
        return count, size

    def _enqueue(
        self,
        db: sqlite3.Connection,
        ops: Sequence[Any],
        indexes: list[int],
        results: list[Any],
        count: int,
        size: int,
    ) -> tuple[int, int]:
        pending = self._keys
        limits = self.limits
        rows: list[tuple[Any, ...]] = []
        taken: list[int] = []
        for i in indexes:
            op: Enqueue = ops[i]
            key = (op.caller, op.request_id)
            if key in pending:
                results[i] = _DUPLICATE_PENDING
                continue
            if count + 1 > limits.max_messages or size + len(op.envelope) > limits.max_bytes:
                results[i] = ResourceExhausted(
                    f"mailbox full ({count} messages, {size} bytes;"
                    f" bound {limits.max_messages} messages, {limits.max_bytes} bytes)"
                )
                continue
            pending.add(key)
            count += 1
            size += len(op.envelope)
            results[i] = _QUEUED
            taken.append(i)
            rows.append(
                (op.priority, op.caller, op.request_id, op.payload_type, op.envelope, op.now)
            )
        if not rows:
            return count, size
        # A request answered within the window is not inserted (ENV-6); the common
        # case, no such duplicate, costs no lookup. Rows go in in the order given
        # (FIFO): a VALUES list is read in order.
        window = limits.dedup_window
        inserted = execute_rows(
            db,
            "INSERT OR IGNORE INTO messages (priority, caller, request_id, payload_type,"
            " envelope, accepted_at) SELECT * FROM (VALUES ",
            ") AS v WHERE NOT EXISTS (SELECT 1 FROM answers AS a WHERE a.caller = v.column2"
            " AND a.request_id = v.column3 AND a.answered_at >= v.column6 - ?)",
            rows,
            (window,),
        )
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

    def _data_version_changed(self, db: sqlite3.Connection) -> bool:
        """Whether another connection committed since this one last looked (or a
        failed batch left the in-memory state unknown: version -1)."""
        (version,) = db.execute("PRAGMA data_version").fetchone()
        changed = version != self._data_version
        self._data_version = version
        return bool(changed)
