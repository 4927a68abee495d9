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
- a dequeue takes rows from the queue in memory (``actr.mailbox_queue``: the
  database is the log, not the queue) and marks them in flight (attempts + 1) in
  the batch's transaction, HIGH before NORMAL, FIFO within (MBX-2); so a row is
  handed out only once its enqueue and its in-flight mark are committed, and a
  batch marks all it hands out with one statement (rows queued in the same batch
  with nothing older queued go in in flight: ``actr.mailbox_enqueue``). A row a
  dead process left in flight (``recover``) comes alone (MBX-4: it alone counts a
  failure if it kills the process again);
- an ack deletes the row and stores its answer in the same transaction (MBX-3);
- a failure counts towards ``max_attempts``, then the row is a dead letter; a
  duplicate of a dead letter is answered ``dead_letter_answer(envelope, reason)``,
  which the caller provides (MBX-4).

Within a batch: acks, dead letters, failures, put-backs, enqueues, prunes, then
dequeues, so a dequeue sees what the same batch queued.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from actr.mailbox_enqueue import EnqueueRules
from actr.mailbox_ops import (
    Ack,
    Bury,
    Dequeue,
    Enqueue,
    EnqueueResult,
    Fail,
    MailboxLimits,
    Op,
    Outcome,
    Prune,
    Requeue,
)
from actr.mailbox_queue import ReadyQueue
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
    next_seq,
    replay_rows,
    seq_filter,
    transaction,
)

_Record = MailboxRecord._make

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


class MailboxCore(EnqueueRules):
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
        self.queue = ReadyQueue()  # the READY rows' head, handed out without SQL
        self._next_seq = 1  # the seq the next queued row gets (reloaded with the keys)
        self._data_version = -1  # -1: what is in memory is not to be trusted

    def holds(self, caller: str, request_id: str) -> bool:
        """Whether the request is in the mailbox (queued or in flight)."""
        return (caller, request_id) in self._keys

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
            self._next_seq = next_seq(db)
        self.queue.reset()

    def recover(
        self,
        db: sqlite3.Connection,
        now: float,
        started: Collection[tuple[int, int]] | None = None,
    ) -> tuple[int, int]:
        """MBX-3/MBX-4 at start: rows in flight when their process died count a
        failure and go back to the queue, or to the dead letters once they failed
        ``max_attempts`` times. ``started`` (the start journal,
        ``actr.mailbox_journal``): the (seq, attempt) of rows whose handler had
        started; an in-flight row not in it was only taken ahead and never ran, so it
        goes back with its attempt given back and no failure counted. None (no
        journal): every in-flight row counts. Returns (put back, dead-lettered)."""
        attempts = self.limits.max_attempts
        with transaction(db):
            never_ran: list[tuple[int]] = []
            if started is not None:
                flying = db.execute(
                    "SELECT seq, attempts FROM messages WHERE state = ?", (IN_FLIGHT,)
                ).fetchall()
                never_ran = [(seq,) for seq, attempt in flying if (seq, attempt) not in started]
                execute_rows(
                    db,
                    f"UPDATE messages SET state = {READY}, attempts = attempts - 1 WHERE seq IN (",
                    ")",
                    never_ran,
                )
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
        self.queue.reset()
        return len(back) + len(never_ran), len(rows)

    def replay(self, db: sqlite3.Connection, seqs: Iterable[int] | None) -> tuple[int, int]:
        """Dead letters (all, or these) back to the queue with a fresh count, except
        those answered for real meanwhile (dropped). Returns (moved, dropped)."""
        where, args = seq_filter(seqs)
        try:
            moved, skipped, keys, (count, size) = replay_rows(db, where, args)
        finally:
            self.queue.reset()
        self._keys, self.count, self.bytes = keys, count, size
        return moved, skipped

    # -- a batch -----------------------------------------------------------------

    def apply(self, db: sqlite3.Connection, ops: Sequence[Op]) -> list[Any]:
        """Runs ``ops`` in one transaction and returns their results in order. If the
        transaction fails, it raises and nothing of it is kept."""
        results: list[Any] = [None] * len(ops)
        by_kind: dict[type, list[int]] = {}
        for i, op in enumerate(ops):
            group = by_kind.get(type(op))
            if group is None:
                by_kind[type(op)] = [i]
            else:
                group.append(i)
        try:
            with transaction(db):
                count, size = self._apply(db, ops, by_kind, results)
        except BaseException:
            # What this batch changed in memory (keys, queue) is void: the next one
            # reloads.
            self._data_version = -1
            self.queue.reset()
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
            self._next_seq = next_seq(db)
            self.queue.reset()
        queue = self.queue
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
            elif failed:
                queue.put_back(failing.record)
        keys = self._keys
        for record in gone:
            keys.discard((record.caller, record.request_id))
            self._suspects.discard(record.seq)
            if by_kind.get(Bury):  # a queued row buried (not one in flight): rare
                queue.discard(record.seq, record.priority)
        if recount:
            # An ack found its row gone already (acked twice): read what is there.
            self._keys = all_keys(db)
            count, size = count_rows(db)
        else:
            count -= len(gone)
            size -= sum(len(record.envelope) for record in gone)

        for i in by_kind.get(Requeue, []):
            back: Requeue = ops[i]
            given = 0 if back.started else 1
            cur = db.execute(
                "UPDATE messages SET state = ?, attempts = attempts - ?"
                " WHERE seq = ? AND state = ?",
                (READY, given, back.record.seq, IN_FLIGHT),
            )
            if cur.rowcount:
                queue.put_back(back.record._replace(attempts=back.record.attempts - given))
        enqueues = by_kind.get(Enqueue)
        dequeues = by_kind.get(Dequeue, [])
        handed: list[MailboxRecord] = []  # new rows that went in already in flight
        if enqueues:
            # With nothing older queued, the rows this batch's one dequeue would take
            # go in in flight: no UPDATE, and no entry in the ready index to add and
            # remove (the hot path of a call to an idle actor).
            direct = ops[dequeues[0]].limit if len(dequeues) == 1 and not queue.has_ready() else 0
            count, size = self._enqueue(db, ops, enqueues, results, count, size, direct, handed)
        for i in by_kind.get(Prune, []):
            cur = db.execute(
                "DELETE FROM answers WHERE answered_at < ?",
                (ops[i].now - self.limits.dedup_window,),
            )
            results[i] = cur.rowcount
        for i in dequeues:
            taken = queue.take(db, ops[i].limit - len(handed), self._suspects)
            if taken:
                marked = execute_rows(
                    db,
                    "UPDATE messages SET state = 1, attempts = attempts + 1 WHERE seq IN (",
                    f") AND state = {READY}",
                    [(r.seq,) for r in taken],
                )
                if marked != len(taken):
                    # The queue in memory disagrees with the rows: fail the batch (its
                    # operations go again, each alone) and reload.
                    raise RuntimeError(f"mailbox queue out of step ({marked}/{len(taken)})")
            # (seq, priority, caller, request_id, payload_type, envelope, attempts + 1,
            # accepted_at), built directly: ``_replace`` costs ~2 us a row.
            results[i] = handed + [_Record((*r[:6], r[6] + 1, r[7])) for r in taken]
        return count, size

    def _data_version_changed(self, db: sqlite3.Connection) -> bool:
        """Whether another connection committed since this one last looked (or a
        failed batch left the in-memory state unknown: version -1)."""
        (version,) = db.execute("PRAGMA data_version").fetchone()
        changed = version != self._data_version
        self._data_version = version
        return bool(changed)
