"""The mailbox's batch logic on a plain sqlite3 connection, time passed in: no
asyncio, no thread. ENV-6 dedup, MBX-2 order, MBX-3 redelivery, MBX-4 failures and
dead letters (the answer is the caller's), MBX-5 bound, replay, and a model-based
property over any sequence of batches."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actr.errors import ResourceExhausted
from actr.mailbox_rules import (
    Ack,
    Bury,
    Dequeue,
    Enqueue,
    EnqueueResult,
    Fail,
    MailboxCore,
    MailboxLimits,
    Outcome,
    Prune,
    Requeue,
)
from actr.mailbox_store import MailboxRecord, RowState, prepare

HIGH, NORMAL = 0, 1  # what the runtime uses (actr.inbound): lower is first
T0 = 1_000_000.0
WINDOW = 30.0
CALLER = "1@1/a:caller:1"


def dead_answer(envelope: bytes, reason: str) -> bytes | None:
    """A stand-in for the runtime's: the storage layer stores what it is given."""
    return None if envelope.startswith(b"tell") else b"DEAD " + envelope + b" " + reason.encode()


def connect(path: str = ":memory:") -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    prepare(db)
    return db


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = connect()
    yield conn
    conn.close()


def make_core(db: sqlite3.Connection, **limits: float) -> MailboxCore:
    core = MailboxCore(MailboxLimits(dedup_window=WINDOW, **limits), dead_answer)  # type: ignore[arg-type]
    core.load(db)
    return core


def enq(
    rid: str, *, priority: int = NORMAL, now: float = T0, caller: str = CALLER, body: bytes = b""
) -> Enqueue:
    return Enqueue(caller, rid, priority, 0, body or rid.encode(), now)


def outcomes(results: list[object]) -> list[Outcome]:
    return [r.outcome for r in results if isinstance(r, EnqueueResult)]


def take(core: MailboxCore, db: sqlite3.Connection, limit: int = 100) -> list[MailboxRecord]:
    (records,) = core.apply(db, [Dequeue(limit)])
    assert isinstance(records, list)
    return records


def states(db: sqlite3.Connection) -> list[tuple[str, RowState]]:
    rows = db.execute("SELECT request_id, state FROM messages ORDER BY seq").fetchall()
    return [(rid, RowState(state)) for rid, state in rows]


# -- MBX-2: order ---------------------------------------------------------------------


def test_mbx2_high_before_normal_fifo_within_and_marked_in_flight(
    db: sqlite3.Connection,
) -> None:
    core = make_core(db)
    plan = [("n1", NORMAL), ("h1", HIGH), ("n2", NORMAL), ("h2", HIGH), ("n3", NORMAL)]
    core.apply(db, [enq(rid, priority=p) for rid, p in plan])
    first = take(core, db, limit=3)
    assert [r.request_id for r in first] == ["h1", "h2", "n1"]
    assert all(r.attempts == 1 for r in first)
    assert dict(states(db)) == {
        "n1": RowState.IN_FLIGHT,
        "h1": RowState.IN_FLIGHT,
        "h2": RowState.IN_FLIGHT,
        "n2": RowState.READY,
        "n3": RowState.READY,
    }
    assert [r.request_id for r in take(core, db)] == ["n2", "n3"]
    assert take(core, db) == []


def test_mbx2_a_dequeue_sees_what_its_own_batch_queued(db: sqlite3.Connection) -> None:
    core = make_core(db)
    results = core.apply(db, [Dequeue(5), enq("r1"), enq("h1", priority=HIGH)])
    assert [r.request_id for r in results[0]] == ["h1", "r1"]
    assert outcomes(results) == [Outcome.QUEUED, Outcome.QUEUED]
    assert core.commits == 1


def flight(db: sqlite3.Connection) -> list[tuple[str, RowState, int]]:
    rows = db.execute("SELECT request_id, state, attempts FROM messages ORDER BY seq")
    return [(rid, RowState(state), attempts) for rid, state, attempts in rows]


def test_mbx1_rows_a_batch_queues_and_hands_out_go_in_in_flight(db: sqlite3.Connection) -> None:
    """Nothing older queued: the rows the batch's dequeue takes are inserted in flight
    (attempt 1), the rest READY, and the hand-out is the same as marking them after."""
    core = make_core(db)
    results = core.apply(
        db, [enq("n1"), enq("h1", priority=HIGH), enq("n2"), enq("h2", priority=HIGH), Dequeue(3)]
    )
    assert [(r.request_id, r.attempts) for r in results[-1]] == [("h1", 1), ("h2", 1), ("n1", 1)]
    assert flight(db) == [
        ("n1", RowState.IN_FLIGHT, 1),
        ("h1", RowState.IN_FLIGHT, 1),
        ("n2", RowState.READY, 0),
        ("h2", RowState.IN_FLIGHT, 1),
    ]
    # The ready index holds only the READY row: the next take finds it by SQL too.
    assert db.execute(
        "SELECT request_id FROM messages INDEXED BY messages_ready WHERE state = 0"
    ).fetchall() == [("n2",)]
    assert [r.request_id for r in take(core, db)] == ["n2"]
    core.apply(db, [Ack(r, b"ok", T0) for r in results[-1]])
    assert (core.count, core.bytes) == (1, 2)


def test_mbx2_rows_queued_before_go_first_and_new_rows_wait_ready(db: sqlite3.Connection) -> None:
    core = make_core(db)
    core.apply(db, [enq("old")])
    results = core.apply(db, [enq("new"), Dequeue(1)])
    assert [r.request_id for r in results[-1]] == ["old"]
    assert flight(db) == [("old", RowState.IN_FLIGHT, 1), ("new", RowState.READY, 0)]


def test_env6_a_duplicate_answered_is_not_handed_out_and_the_next_row_takes_its_place(
    db: sqlite3.Connection,
) -> None:
    core = make_core(db)
    (done,) = core.apply(db, [enq("a"), Dequeue(1)])[-1]
    core.apply(db, [Ack(done, b"answer", T0)])
    results = core.apply(db, [enq("a"), enq("b"), enq("c"), Dequeue(1)])
    assert results[0].outcome is Outcome.DUPLICATE_ANSWERED
    assert [r.request_id for r in results[-1]] == ["b"]
    assert flight(db) == [("b", RowState.IN_FLIGHT, 1), ("c", RowState.READY, 0)]


def test_mbx3_mbx4_a_row_inserted_in_flight_recovers_like_one_marked(tmp_path: object) -> None:
    """Started (in the journal): a failure counts. Only taken: back with attempt 0."""
    path = str(tmp_path) + "/m.db"
    first = connect(path)
    core = make_core(first)
    ran, _ = core.apply(first, [enq("ran"), enq("ahead"), Dequeue(2)])[-1]
    first.close()  # the process dies: "ran" had started, "ahead" had not

    db = connect(path)
    again = MailboxCore(MailboxLimits(max_attempts=3), dead_answer)
    assert again.recover(db, T0, started={(ran.seq, ran.attempts)}) == (2, 0)
    rows = db.execute("SELECT request_id, state, attempts, failures FROM messages ORDER BY seq")
    assert rows.fetchall() == [("ran", 0, 1, 1), ("ahead", 0, 0, 0)]
    db.close()


# -- ENV-6: duplicates ------------------------------------------------------------------


def test_env6_duplicate_of_a_queued_or_running_request_is_pending(
    db: sqlite3.Connection,
) -> None:
    core = make_core(db)
    results = core.apply(db, [enq("r1"), enq("r1", body=b"other"), enq("r1", caller="2@1/a:b:1")])
    assert outcomes(results) == [Outcome.QUEUED, Outcome.DUPLICATE_PENDING, Outcome.QUEUED]
    (rec, _) = take(core, db)
    assert rec.envelope == b"r1"
    assert outcomes(core.apply(db, [enq("r1")])) == [Outcome.DUPLICATE_PENDING]  # running


def test_env6_answered_within_the_window_gets_its_answer_then_runs_again(
    db: sqlite3.Connection,
) -> None:
    core = make_core(db)
    core.apply(db, [enq("r1")])
    (rec,) = take(core, db)
    core.apply(db, [Ack(rec, b"answer", T0 + 1)])
    (hit,) = core.apply(db, [enq("r1", now=T0 + 1 + WINDOW)])
    assert hit == EnqueueResult(Outcome.DUPLICATE_ANSWERED, b"answer")
    assert take(core, db) == []  # the handler does not run twice
    assert outcomes(core.apply(db, [enq("r1", now=T0 + 2 + WINDOW)])) == [Outcome.QUEUED]
    assert (core.count, core.bytes) == (1, 2)


def test_env6_prune_forgets_answers_older_than_the_window(db: sqlite3.Connection) -> None:
    core = make_core(db)
    core.apply(db, [enq("old"), enq("new")])
    old, new = take(core, db)
    core.apply(db, [Ack(old, b"o", T0 - WINDOW - 1), Ack(new, b"n", T0)])
    (pruned,) = core.apply(db, [Prune(T0)])
    assert pruned == 1
    assert outcomes(core.apply(db, [enq("old"), enq("new")])) == [
        Outcome.QUEUED,
        Outcome.DUPLICATE_ANSWERED,
    ]


# -- MBX-5: the bound ----------------------------------------------------------------------


def test_mbx5_past_the_bound_only_the_overflowing_enqueue_is_refused(
    db: sqlite3.Connection,
) -> None:
    core = make_core(db, max_messages=2)
    results = core.apply(db, [enq("a"), enq("b"), enq("c"), enq("a")])
    assert outcomes(results) == [Outcome.QUEUED, Outcome.QUEUED, Outcome.DUPLICATE_PENDING]
    assert isinstance(results[2], ResourceExhausted)
    assert "bound 2 messages" in results[2].message
    assert (core.count, core.bytes) == (2, 2)
    (a, _) = take(core, db)
    core.apply(db, [Ack(a, None, T0)])
    assert outcomes(core.apply(db, [enq("c")])) == [Outcome.QUEUED]


def test_mbx5_bytes_bound(db: sqlite3.Connection) -> None:
    core = make_core(db, max_bytes=100)
    results = core.apply(db, [enq("a", body=b"x" * 60), enq("b", body=b"y" * 41)])
    assert isinstance(results[1], ResourceExhausted)
    assert (core.count, core.bytes) == (1, 60)


# -- acks, put-backs, failures ------------------------------------------------------------


def test_requeue_gives_the_attempt_back_only_when_no_handler_ran(db: sqlite3.Connection) -> None:
    core = make_core(db)
    core.apply(db, [enq("a"), enq("b")])
    a, b = take(core, db)
    core.apply(db, [Requeue(a, False), Requeue(b, True), Requeue(b, True)])  # b twice: once
    assert {r.request_id: r.attempts for r in take(core, db)} == {"a": 1, "b": 2}


def test_ack_of_a_row_already_acked_changes_nothing(db: sqlite3.Connection) -> None:
    core = make_core(db)
    core.apply(db, [enq("a"), enq("b")])
    a, _ = take(core, db)
    core.apply(db, [Ack(a, b"1", T0)])
    core.apply(db, [Ack(a, b"1", T0), Bury(a, "late", T0), Requeue(a, True)])
    assert (core.count, core.bytes) == (1, 1)
    assert states(db) == [("b", RowState.IN_FLIGHT)]


def test_mbx4_failures_count_then_dead_letter_with_the_callers_answer(
    db: sqlite3.Connection,
) -> None:
    core = make_core(db, max_attempts=2)
    core.apply(db, [enq("r1")])
    (rec,) = take(core, db)
    assert core.apply(db, [Fail(rec, "bug", T0)]) == [False]
    assert states(db) == [("r1", RowState.READY)]
    (rec,) = take(core, db)
    assert core.apply(db, [Fail(rec, "bug", T0)]) == [True]
    assert (core.count, core.bytes) == (0, 0)
    reason, attempts = db.execute("SELECT reason, attempts FROM dead_letters").fetchone()
    assert (reason, attempts) == ("failed 2 times, the last: bug", 2)
    # A duplicate is answered what the caller's function made of it, and never runs.
    (hit,) = core.apply(db, [enq("r1", now=T0 + 1)])
    assert hit == EnqueueResult(Outcome.DUPLICATE_ANSWERED, b"DEAD r1 " + reason.encode())
    assert core.apply(db, [Fail(rec, "bug", T0)]) == [False]  # gone: nothing to count


def test_mbx4_a_dead_lettered_tell_is_answered_with_nothing(db: sqlite3.Connection) -> None:
    core = make_core(db)
    core.apply(db, [enq("t1", body=b"tell t1")])
    (rec,) = take(core, db)
    core.apply(db, [Bury(rec, "stored envelope does not decode", T0)])
    (hit,) = core.apply(db, [enq("t1", body=b"tell t1", now=T0 + 1)])
    assert hit == EnqueueResult(Outcome.DUPLICATE_ANSWERED, None)


# -- MBX-3: what a dead process left in flight ----------------------------------------------


def test_mbx3_mbx4_recover_requeues_and_hands_suspects_out_alone(tmp_path: object) -> None:
    path = str(tmp_path) + "/m.db"
    first = connect(path)
    core = make_core(first)
    core.apply(first, [enq(r) for r in ("a", "b", "c", "d")])
    assert [r.request_id for r in take(core, first, limit=2)] == ["a", "b"]
    first.close()  # the process dies with a and b in flight

    db = connect(path)
    again = MailboxCore(MailboxLimits(max_attempts=3), dead_answer)
    assert again.recover(db, T0) == (2, 0)
    again.load(db)
    assert [r[1] for r in states(db)] == [RowState.READY] * 4
    # Each row its process died with comes alone, and ends the run before it.
    runs = [[r.request_id for r in take(again, db, limit=4)] for _ in range(3)]
    assert runs == [["a"], ["b"], ["c", "d"]]
    assert again.recovered(1) and not again.recovered(3)
    db.close()


def test_mbx4_recover_dead_letters_a_row_that_killed_its_process_max_attempts_times(
    tmp_path: object,
) -> None:
    path = str(tmp_path) + "/m.db"
    for attempt in range(3):
        db = connect(path)
        core = MailboxCore(MailboxLimits(max_attempts=3), dead_answer)
        assert core.recover(db, T0) == ((1, 0) if attempt else (0, 0))
        core.load(db)
        if attempt == 0:
            core.apply(db, [enq("poison")])
        (rec,) = take(core, db)
        assert rec.attempts == attempt + 1
        db.close()
    db = connect(path)
    core = MailboxCore(MailboxLimits(max_attempts=3), dead_answer)
    assert core.recover(db, T0) == (0, 1)
    (reason,) = db.execute("SELECT reason FROM dead_letters").fetchone()
    assert "failed 3 times without an answer" in reason
    db.close()


# -- another connection, a failed batch, replay --------------------------------------------


def test_a_commit_by_another_connection_is_seen_by_the_next_batch(tmp_path: object) -> None:
    path = str(tmp_path) + "/m.db"
    db, other = connect(path), connect(path)
    core = make_core(db)
    other.execute(
        "INSERT INTO messages (priority, caller, request_id, payload_type, envelope,"
        " accepted_at) VALUES (1, ?, 'x', 0, x'0000', 0)",
        (CALLER,),
    )
    assert outcomes(core.apply(db, [enq("x")])) == [Outcome.DUPLICATE_PENDING]
    assert (core.count, core.bytes) == (1, 2)
    db.close()
    other.close()


def test_a_failed_batch_keeps_nothing(db: sqlite3.Connection) -> None:
    core = make_core(db)
    core.apply(db, [enq("a")])
    db.execute(
        "CREATE TEMP TRIGGER boom BEFORE INSERT ON messages"
        " BEGIN SELECT RAISE(ABORT, 'simulated I/O error'); END"
    )
    with pytest.raises(sqlite3.IntegrityError):
        core.apply(db, [enq("b"), Dequeue(5)])
    assert (core.count, core.bytes, core.commits) == (1, 1, 1)
    assert states(db) == [("a", RowState.READY)]
    db.execute("DROP TRIGGER temp.boom")
    assert outcomes(core.apply(db, [enq("b")])) == [Outcome.QUEUED]  # "b" was not kept
    assert (core.count, core.bytes) == (2, 2)


def test_replay_queues_dead_letters_again_unless_answered_meanwhile(
    db: sqlite3.Connection,
) -> None:
    core = make_core(db)
    core.apply(db, [enq("a"), enq("b")])
    a, b = take(core, db)
    core.apply(db, [Bury(a, "poison", T0), Bury(b, "poison", T0)])
    # "b" is retried past the window, runs, and is answered for real.
    core.apply(db, [enq("b", now=T0 + WINDOW + 1)])
    (b2,) = take(core, db)
    core.apply(db, [Ack(b2, b"real", T0 + WINDOW + 1)])
    assert core.replay(db, None) == (1, 1)
    (again,) = take(core, db)
    assert (again.request_id, again.attempts) == ("a", 1)
    assert (core.count, core.bytes) == (1, 1)


# -- a model of any sequence of batches ------------------------------------------------------

_op = st.one_of(
    st.tuples(st.just("enqueue"), st.integers(0, 11), st.sampled_from([HIGH, NORMAL])),
    st.tuples(st.just("dequeue"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("ack"), st.integers(0, 8), st.just(0)),
    st.tuples(st.just("requeue"), st.integers(0, 8), st.booleans().map(int)),
    st.tuples(st.just("fail"), st.integers(0, 8), st.just(0)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_op, min_size=1, max_size=6), max_size=12))
def test_mbx2_env6_mbx4_any_batches_match_a_model(
    batches: list[list[tuple[str, int, int]]],
) -> None:
    """Whatever is batched together: dequeues hand out HIGH before NORMAL and FIFO by
    queue position, a duplicate is pending while queued or running (or behind a copy in
    the same batch) and answered after,
    a row failing ``max_attempts`` times is a dead letter, and count and bytes are the
    table's."""
    db = connect()
    core = make_core(db, max_attempts=2)
    seq = 0
    ready: dict[str, tuple[int, int]] = {}  # request_id -> (priority, seq)
    running: dict[str, MailboxRecord] = {}
    answered: set[str] = set()  # acked or dead-lettered
    failures: dict[str, int] = {}
    # The model's own queue positions: the core's seqs may skip (a duplicate answered
    # from the store uses one up), so a row put back keeps the position it was given.
    position: dict[str, int] = {}
    for batch in batches:
        ops: list[object] = []
        taken_in_batch: set[str] = set()
        for kind, n, arg in batch:
            rid = f"r{n}"
            if kind == "enqueue":
                ops.append(enq(rid, priority=arg))
            elif kind == "dequeue":
                ops.append(Dequeue(n))
            elif rid in running and rid not in taken_in_batch:
                taken_in_batch.add(rid)
                rec = running[rid]
                ops.append(
                    Ack(rec, rid.encode(), T0)
                    if kind == "ack"
                    else Requeue(rec, bool(arg))
                    if kind == "requeue"
                    else Fail(rec, "bug", T0)
                )
        results = core.apply(db, ops)  # type: ignore[arg-type]
        # The model, in the batch's order: acks, failures, put-backs, enqueues, dequeues.
        for op in ops:
            if isinstance(op, Ack):
                answered.add(op.record.request_id)
                del running[op.record.request_id]
        for op, result in zip(ops, results, strict=True):
            if isinstance(op, Fail):
                rid = op.record.request_id
                failures[rid] = failures.get(rid, 0) + 1
                del running[rid]
                assert result is (failures[rid] >= 2)
                if result:
                    answered.add(rid)
                else:
                    ready[rid] = (op.record.priority, position[rid])
        for op in ops:
            if isinstance(op, Requeue):
                rid = op.record.request_id
                del running[rid]
                ready[rid] = (op.record.priority, position[rid])
        copies: set[str] = set()
        for op, result in zip(ops, results, strict=True):
            if isinstance(op, Enqueue):
                rid = op.request_id
                first = rid not in copies
                copies.add(rid)
                # A second copy in one batch waits behind the first, whatever it got.
                if rid in ready or rid in running or not first:
                    assert result.outcome is Outcome.DUPLICATE_PENDING
                elif rid in answered:
                    assert result.outcome is Outcome.DUPLICATE_ANSWERED
                else:
                    assert result.outcome is Outcome.QUEUED
                    seq += 1
                    ready[rid] = (op.priority, seq)
                    position[rid] = seq
        for op, result in zip(ops, results, strict=True):
            if isinstance(op, Dequeue):
                order = sorted(ready, key=lambda r: ready[r])[: op.limit]
                assert [r.request_id for r in result] == order
                for rec in result:
                    del ready[rec.request_id]
                    running[rec.request_id] = rec
        # The table agrees: what runs is in flight with its attempt, the rest READY.
        table = {rid: (RowState(s), a) for rid, s, a in flight(db)}
        assert table == {
            **{rid: (RowState.READY, table[rid][1]) for rid in ready},
            **{rid: (RowState.IN_FLIGHT, rec.attempts) for rid, rec in running.items()},
        }
        rows = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM messages"
        ).fetchone()
        assert (
            (core.count, core.bytes)
            == rows
            == (
                len(ready) + len(running),
                sum(len(r.encode()) for r in [*ready, *running]),
            )
        )
    db.close()
