"""The mailbox's SQL: its schema, and plain functions over a ``sqlite3.Connection``
(no asyncio, no protocol): the statements of ``actr.mailbox_rules``'s batches and
of the dead-letter tools. Every function here runs on the connection's one thread.

A row of ``messages`` is either READY (queued, waiting to be handed out) or
IN_FLIGHT (handed out, not acked yet): ``RowState``. What a dead letter's
duplicates are answered is the caller's to say (``bury``'s ``answer_for``).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import IntEnum
from itertools import chain
from typing import Any, NamedTuple


class RowState(IntEnum):
    """The ``state`` column of a ``messages`` row."""

    READY = 0  # queued: handed out by the next dequeue that reaches it
    IN_FLIGHT = 1  # handed out: acked, failed, dead-lettered or put back next


READY = int(RowState.READY)
IN_FLIGHT = int(RowState.IN_FLIGHT)
_IN_CHUNK = 400  # keys per "IN (...)" query, well under SQLite's variable limit

# What a duplicate of a dead-lettered request is answered, from its stored
# envelope and the reason (None: nothing, as for a TELL).
AnswerFor = Callable[[bytes, str], bytes | None]

SCHEMA = """
-- seq is given by the mailbox (actr.mailbox_rules: the next after every seq in messages
-- and dead_letters), not by AUTOINCREMENT, whose sqlite_sequence row is one more page
-- written per commit. Files made before keep AUTOINCREMENT; explicit seqs work there.
CREATE TABLE IF NOT EXISTS messages (
    seq          INTEGER PRIMARY KEY,
    priority     INTEGER NOT NULL,
    caller       TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    payload_type INTEGER NOT NULL,
    envelope     BLOB    NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    accepted_at  REAL    NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0  -- handlings that failed (MBX-4): not stops
);
-- The queue's order (MBX-2), READY rows only: a row leaves it when handed out, and
-- its ack then touches no index entry of it here.
CREATE INDEX IF NOT EXISTS messages_ready ON messages (priority, seq) WHERE state = 0;
CREATE UNIQUE INDEX IF NOT EXISTS messages_key ON messages (caller, request_id);
CREATE TABLE IF NOT EXISTS answers (
    caller      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    answer      BLOB,
    answered_at REAL NOT NULL,
    dead        INTEGER NOT NULL DEFAULT 0,  -- 1: the error answer of a dead letter
    PRIMARY KEY (caller, request_id)
);
CREATE INDEX IF NOT EXISTS answers_age ON answers (answered_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq          INTEGER PRIMARY KEY,
    priority     INTEGER NOT NULL,
    caller       TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    payload_type INTEGER NOT NULL,
    envelope     BLOB    NOT NULL,
    attempts     INTEGER NOT NULL,
    accepted_at  REAL    NOT NULL,
    reason       TEXT    NOT NULL,
    failed_at    REAL    NOT NULL
);
"""

COLUMNS = "seq, priority, caller, request_id, payload_type, envelope, attempts, accepted_at"


class MailboxRecord(NamedTuple):
    seq: int
    priority: int
    caller: str
    request_id: str
    payload_type: int
    envelope: bytes
    attempts: int
    accepted_at: float


@dataclass(frozen=True)
class DeadLetter:
    record: MailboxRecord
    reason: str
    failed_at: float


@dataclass(frozen=True)
class MailboxStats:
    queued: int
    in_flight: int
    queued_by_priority: dict[int, int]
    oldest_age: float | None
    dead_letters: int
    answers_kept: int


# ``[mailbox] durability``: what a commit survives. "process": a process crash
# (WAL, synchronous=NORMAL: a commit is a write to the WAL file, no fsync; only an OS
# crash or power loss can roll back the last commits). "power": power loss too
# (synchronous=FULL: every commit fsyncs the WAL, ~0.5 ms here).
DURABILITIES = ("process", "power")


def prepare(db: sqlite3.Connection, durability: str = "process") -> None:
    """Sets the connection up (WAL) and brings the file to SCHEMA. The connection
    must be in autocommit mode (``isolation_level=None``): ``transaction`` begins
    and ends every transaction itself."""
    if durability not in DURABILITIES:
        raise ValueError(f"durability must be one of {', '.join(DURABILITIES)}")
    db.execute("PRAGMA busy_timeout=5000")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=" + ("FULL" if durability == "power" else "NORMAL"))
    db.executescript(SCHEMA)
    migrate(db)


def row_values(r: MailboxRecord) -> tuple[Any, ...]:
    return (
        r.seq,
        r.priority,
        r.caller,
        r.request_id,
        r.payload_type,
        r.envelope,
        r.attempts,
        r.accepted_at,
    )


def seq_filter(seqs: Iterable[int] | None) -> tuple[str, tuple[int, ...]]:
    if seqs is None:
        return "", ()
    chosen = tuple(int(s) for s in seqs)
    if not chosen:
        return " WHERE 0", ()
    return f" WHERE seq IN ({','.join('?' * len(chosen))})", chosen


def bury(
    db: sqlite3.Connection,
    records: list[MailboxRecord],
    reason: str,
    now: float,
    answer_for: AnswerFor,
) -> list[MailboxRecord]:
    """Moves rows to the dead letters (MBX-4) and returns those it moved (a row
    acked meanwhile is not there to move). A duplicate of one is answered with
    ``answer_for(envelope, reason)`` meanwhile; a real answer, if one exists, is kept."""
    exists = "SELECT 1 FROM messages WHERE seq = ?"
    there = [r for r in records if db.execute(exists, (r.seq,)).fetchone()]
    db.executemany(
        f"INSERT OR REPLACE INTO dead_letters ({COLUMNS}, reason, failed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*row_values(r), reason, now) for r in there],
    )
    db.executemany("DELETE FROM messages WHERE seq = ?", [(r.seq,) for r in there])
    db.executemany(
        "INSERT OR IGNORE INTO answers (caller, request_id, answer, answered_at, dead)"
        " VALUES (?, ?, ?, ?, 1)",
        [(r.caller, r.request_id, answer_for(r.envelope, reason), now) for r in there],
    )
    return there


def migrate(db: sqlite3.Connection) -> None:
    """Brings a mailbox file written by an older version up to SCHEMA."""
    # Replaced by the partial index messages_ready (fewer index writes per request).
    db.execute("DROP INDEX IF EXISTS messages_order")
    columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    if "failures" not in columns:
        # Before this column, a row's attempts also counted its failures.
        db.execute("ALTER TABLE messages ADD COLUMN failures INTEGER NOT NULL DEFAULT 0")
        db.execute("UPDATE messages SET failures = attempts")


@contextmanager
def transaction(db: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    """Commits the block's statements, or rolls them back if it raises. A full disk
    or an I/O error may have ended the transaction already (SQLite rolls back by
    itself then), so a ROLLBACK is only sent to one still open: its own failure
    would hide the error that matters."""
    db.execute(begin)
    try:
        yield
    except BaseException:
        if db.in_transaction:
            with suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def replay_rows(
    db: sqlite3.Connection, where: str, args: tuple[int, ...]
) -> tuple[int, int, set[tuple[str, str]], tuple[int, int]]:
    """Dead letters back to the queue, but never one whose request was answered for
    real meanwhile (a retry ran it): that would run it twice (ENV-6)."""
    with transaction(db):
        joined = where.replace("seq", "d.seq")
        rows = db.execute(
            "SELECT d.seq, a.dead FROM dead_letters AS d LEFT JOIN answers AS a"
            f" ON a.caller = d.caller AND a.request_id = d.request_id{joined}",
            args,
        ).fetchall()
        answered = [(seq,) for seq, dead in rows if dead == 0]
        again = [(seq,) for seq, dead in rows if dead != 0]
        db.executemany(
            "DELETE FROM answers WHERE dead = 1 AND (caller, request_id) IN"
            " (SELECT caller, request_id FROM dead_letters WHERE seq = ?)",
            again,
        )
        before = db.total_changes
        db.executemany(
            f"INSERT OR IGNORE INTO messages ({COLUMNS}, state)"
            " SELECT seq, priority, caller, request_id, payload_type, envelope, 0,"
            f" accepted_at, {READY} FROM dead_letters WHERE seq = ?",
            again,
        )
        moved = db.total_changes - before
        db.executemany("DELETE FROM dead_letters WHERE seq = ?", answered + again)
        keys, totals = all_keys(db), count_rows(db)
    return moved, len(answered), keys, totals


def read_stats(db: sqlite3.Connection, now: float) -> MailboxStats:
    rows = db.execute(
        "SELECT state, priority, COUNT(*), MIN(accepted_at) FROM messages GROUP BY state, priority"
    ).fetchall()
    queued = in_flight = 0
    by_priority: dict[int, int] = {}
    oldest: float | None = None
    for state, priority, count, first in rows:
        if state == READY:
            queued += count
            by_priority[priority] = by_priority.get(priority, 0) + count
        else:
            in_flight += count
        oldest = first if oldest is None else min(oldest, first)
    (dead,) = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
    (kept,) = db.execute("SELECT COUNT(*) FROM answers").fetchone()
    age = None if oldest is None else now - oldest
    return MailboxStats(queued, in_flight, by_priority, age, int(dead), int(kept))


def read_dead_letters(
    db: sqlite3.Connection, seqs: Iterable[int] | None, limit: int
) -> list[DeadLetter]:
    """The dead letters (all, or these), oldest first, at most ``limit``."""
    where, args = seq_filter(seqs)
    rows = db.execute(
        f"SELECT {COLUMNS}, reason, failed_at FROM dead_letters{where} ORDER BY seq LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [DeadLetter(MailboxRecord(*r[:8]), r[8], r[9]) for r in rows]


def purge_dead_letters(db: sqlite3.Connection, seqs: Iterable[int] | None) -> int:
    where, args = seq_filter(seqs)
    with transaction(db):
        return db.execute(f"DELETE FROM dead_letters{where}", args).rowcount


def count_rows(db: sqlite3.Connection) -> tuple[int, int]:
    count, size = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM messages"
    ).fetchone()
    return int(count), int(size)


def next_seq(db: sqlite3.Connection) -> int:
    """The seq the next queued row gets: after every seq in use or handed out before
    (messages, dead letters, and AUTOINCREMENT's high-water mark in older files)."""
    (top,) = db.execute(
        "SELECT MAX(COALESCE((SELECT MAX(seq) FROM messages), 0),"
        " COALESCE((SELECT MAX(seq) FROM dead_letters), 0))"
    ).fetchone()
    has_sequence = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
    ).fetchone()
    if has_sequence:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
        if row is not None:
            top = max(top, row[0])
    return int(top) + 1


def all_keys(db: sqlite3.Connection) -> set[tuple[str, str]]:
    return {(c, r) for c, r in db.execute("SELECT caller, request_id FROM messages")}


def lookup(
    db: sqlite3.Connection, select: str, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[Any, Any]]:
    """Rows of ``select`` whose (caller, request_id) is among ``keys``. One query per
    caller and chunk, "caller = ? AND request_id IN (...)", which the planner serves
    from the (caller, request_id) index (a row-value IN over VALUES scanned the table)."""
    by_caller: dict[str, list[str]] = {}
    for caller, request_id in dict.fromkeys(keys):
        by_caller.setdefault(caller, []).append(request_id)
    found: dict[tuple[str, str], tuple[Any, Any]] = {}
    for caller, ids in by_caller.items():
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            rows = db.execute(
                f"{select} WHERE caller = ? AND request_id IN ({','.join('?' * len(chunk))})",
                [caller, *chunk],
            )
            for row_caller, request_id, a, b in rows:
                found[(row_caller, request_id)] = (a, b)
    return found


# Rows per multi-row statement. A chunk is one statement, so the connection thread
# stays inside SQLite (which runs without the GIL) for the whole chunk, where
# executemany would step once per row and take the GIL back each time, contending
# with the event loop. Fixed sizes keep the distinct statements, and prepares, few.
_CHUNKS = (256, 64, 16, 4, 1)


@functools.lru_cache(maxsize=64)
def _rows_sql(head: str, tail: str, width: int, rows: int) -> str:
    one = "?" if width == 1 else "(" + ", ".join("?" * width) + ")"
    return head + ", ".join([one] * rows) + tail


def execute_rows(
    db: sqlite3.Connection,
    head: str,
    tail: str,
    rows: Sequence[tuple[Any, ...]],
    extra: tuple[Any, ...] = (),
    returned: list[Any] | None = None,
) -> int:
    """Runs ``head <rows as a comma-separated list> tail`` over ``rows``, in chunks
    (in order), with ``extra`` bound after each chunk's values; returns rows changed.
    ``returned``: the statements' result rows (a RETURNING clause) are added to it."""
    if not rows:
        return 0
    width = len(rows[0])
    if len(rows) == 1 and returned is None:  # the common case under light load
        return int(db.execute(_rows_sql(head, tail, width, 1), (*rows[0], *extra)).rowcount)
    room = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(extra)
    before = db.total_changes
    start = 0
    for size in _CHUNKS:
        if size * width > room and size > 1:
            continue
        sql = _rows_sql(head, tail, width, size)
        while len(rows) - start >= size:
            params = list(chain.from_iterable(rows[start : start + size]))
            params.extend(extra)
            cur = db.execute(sql, params)
            if returned is not None:
                returned.extend(cur.fetchall())
            start += size
    return db.total_changes - before
