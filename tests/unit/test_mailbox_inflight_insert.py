"""The in-flight insert (rows a batch queues and hands out at once go in in
flight, attempt 1: actr.mailbox_enqueue). The core is checked against itself with the
shortcut off (a queue that always says it may have rows: every hand-out goes through
the READY insert and the UPDATE), over batches mixing enqueues, dequeues, put-backs,
failures, answered duplicates, a full bound, a small in-memory queue (spilling) and
recovery with the start journal; and the queue in memory is checked to be the exact
head of the READY rows after every batch."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from actr.mailbox_queue import ReadyQueue
from actr.mailbox_rules import (
    Ack,
    Dequeue,
    Enqueue,
    EnqueueResult,
    Fail,
    MailboxCore,
    MailboxLimits,
    Requeue,
)
from actr.mailbox_store import MailboxRecord, RowState
from tests.unit.test_mailbox_rules import CALLER, HIGH, NORMAL, T0, connect, dead_answer, flight


def enq(rid: str, *, priority: int = NORMAL, now: float = T0, size: int = 1) -> Enqueue:
    return Enqueue(CALLER, rid, priority, 0, rid.encode()[:1] * size, now)


# -- a dequeue of nothing ---------------------------------------------------------------


def test_mbx2_a_dequeue_with_a_negative_limit_hands_out_nothing() -> None:
    """``Dequeue(limit)`` with ``limit <= 0`` takes nothing, on the in-flight insert
    path too (enqueues in the same batch, nothing older queued): every row stays READY."""
    db = connect()
    core = MailboxCore(MailboxLimits(), dead_answer)
    core.load(db)
    core.apply(db, [Dequeue(1)])  # the queue is known (and empty)
    results = core.apply(db, [enq("a"), enq("b"), enq("c"), Dequeue(-1)])
    assert results[-1] == []
    assert flight(db) == [
        ("a", RowState.READY, 0),
        ("b", RowState.READY, 0),
        ("c", RowState.READY, 0),
    ]


# -- the shortcut against the long way -----------------------------------------------------


class _AlwaysMaybe(ReadyQueue):
    """``has_ready`` always True: ``MailboxCore`` never inserts in flight (the path
    before the change); ``take`` is unchanged (True only skips its early return)."""

    def has_ready(self) -> bool:
        return True


def _head_is_exact(db: sqlite3.Connection, queue: ReadyQueue) -> None:
    """The queue in memory is the head of each priority's READY rows (MBX-2)."""
    if not queue._known:
        return
    ready: dict[int, list[int]] = {}
    for p, seq in db.execute("SELECT priority, seq FROM messages WHERE state = 0 ORDER BY seq"):
        ready.setdefault(p, []).append(seq)
    held = {p: [r.seq for r in rows] for p, rows in queue._by_priority.items() if rows}
    for p, seqs in ready.items():
        mine = held.get(p, [])
        assert seqs[: len(mine)] == mine, (p, seqs, mine)
        if p not in queue._spilled:
            assert mine == seqs, (p, seqs, mine)
    for p, mine in held.items():
        assert p in ready, (p, mine)
    assert queue.rows == sum(len(v) for v in held.values())
    assert queue.bytes == sum(len(r.envelope) for rows in queue._by_priority.values() for r in rows)


def _table(db: sqlite3.Connection) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT seq, priority, request_id, state, attempts, failures FROM messages ORDER BY seq"
    ).fetchall()


def _result(r: object) -> object:
    if isinstance(r, EnqueueResult):
        return (r.outcome, r.answer)
    if isinstance(r, BaseException):
        return type(r)
    return r


_op = st.one_of(
    st.tuples(
        st.just("enqueue"), st.integers(0, 7), st.sampled_from([HIGH, NORMAL, 2]), st.integers(1, 3)
    ),
    st.tuples(st.just("dequeue"), st.integers(0, 3), st.just(0), st.just(0)),
    st.tuples(
        st.sampled_from(["ack", "requeue", "fail"]),
        st.integers(0, 7),
        st.booleans().map(int),
        st.just(0),
    ),
)
_batch = st.tuples(
    st.lists(_op, min_size=1, max_size=6),
    st.sampled_from([0.0, 0.0, 1.0, 11.0]),  # time passing (the window is 10 s)
    st.one_of(st.none(), st.integers(0, 7)),  # a crash before it: a mask of started rows
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_batch, max_size=10),
    st.sampled_from([3, 100]),  # max_messages
    st.sampled_from([6, 1000]),  # max_bytes
    st.tuples(st.integers(1, 3), st.integers(2, 6), st.integers(1, 2)),  # the queue's bounds
)
def test_mbx1_mbx5_env6_in_flight_insert_is_the_same_as_insert_then_mark(
    batches: list[tuple[list[tuple[str, int, int, int]], float, int | None]],
    max_messages: int,
    max_bytes: int,
    bounds: tuple[int, int, int],
) -> None:
    limits = MailboxLimits(
        max_messages=max_messages, max_bytes=max_bytes, dedup_window=10.0, max_attempts=2
    )
    max_rows, queue_bytes, refill = bounds
    dbs = (connect(), connect())

    def cores() -> tuple[MailboxCore, MailboxCore]:
        made = []
        for db, kind in zip(dbs, (ReadyQueue, _AlwaysMaybe), strict=True):
            core = MailboxCore(limits, dead_answer)
            core.queue = kind(max_rows=max_rows, max_bytes=queue_bytes, refill=refill)
            core.load(db)
            made.append(core)
        return made[0], made[1]

    fast, slow = cores()
    now = T0
    running: dict[str, MailboxRecord] = {}
    for ops_spec, later, crash in batches:
        now += later
        if crash is not None:
            started = {
                (r.seq, r.attempts) for i, r in enumerate(running.values()) if crash >> i & 1
            }
            fast, slow = cores()
            assert fast.recover(dbs[0], now, started) == slow.recover(dbs[1], now, started)
            running.clear()
        ops: list[object] = []
        used: set[str] = set()
        for kind, n, arg, size in ops_spec:
            rid = f"r{n}"
            if kind == "enqueue":
                ops.append(enq(rid, priority=arg, now=now, size=size))
            elif kind == "dequeue":
                ops.append(Dequeue(n))
            elif rid in running and rid not in used:
                used.add(rid)
                rec = running[rid]
                ops.append(
                    Ack(rec, b"ok", now)
                    if kind == "ack"
                    else Requeue(rec, bool(arg))
                    if kind == "requeue"
                    else Fail(rec, "bug", now)
                )
        got = fast.apply(dbs[0], ops)  # type: ignore[arg-type]
        want = slow.apply(dbs[1], ops)  # type: ignore[arg-type]
        assert [_result(r) for r in got] == [_result(r) for r in want]
        assert _table(dbs[0]) == _table(dbs[1])
        assert (fast.count, fast.bytes) == (slow.count, slow.bytes)
        _head_is_exact(dbs[0], fast.queue)
        for op in ops:
            if isinstance(op, (Ack, Requeue, Fail)):
                del running[op.record.request_id]
        for op, result in zip(ops, got, strict=True):
            if isinstance(op, Dequeue):
                for rec in result:
                    running[rec.request_id] = rec
        # What was handed out is in flight with the attempt its record says.
        table = {rid: (state, attempts) for _, _, rid, state, attempts, _ in _table(dbs[0])}
        for rid, rec in running.items():
            assert table[rid] == (RowState.IN_FLIGHT, rec.attempts)
    for db in dbs:
        db.close()
