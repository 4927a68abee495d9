"""Mailbox benchmark: the actr mailbox against raw sqlite3, in one run.

    python bench/mailbox.py [--messages 20000] [--producers 256]

Raw sqlite3: the same schema, WAL, synchronous=NORMAL, batches of 100 rows per
transaction, on one connection in this thread (no asyncio, no thread hops).
Mailbox: ``enqueue`` from 256 concurrent producers (each call returns once its
row is committed), then dequeue in batches of 100 with an ack per message, the
acks committing with the next dequeue as in the runtime (every ack is awaited
before the clock stops). Prints messages per second and mailbox/raw for each.

Both store the same request ids, r0, r1, ..., in the same order (the producers
take them from one counter): where new keys land in the (caller, request_id)
index decides how many pages each commit writes, so different ids on the two
sides would measure the index, not the mailbox.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actr.mailbox import Mailbox, MailboxLimits  # noqa: E402
from actr.mailbox_store import SCHEMA  # noqa: E402

ENVELOPE = b"e" * 120  # a small request envelope
BATCH = 100


def raw_sqlite(path: Path, n: int) -> tuple[float, float]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    now = time.time()
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO messages (priority, caller, request_id, payload_type, envelope,"
            " accepted_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(1, "caller", f"r{i}", 0, ENVELOPE, now) for i in range(start, start + BATCH)],
        )
        db.execute("COMMIT")
    enqueue = n / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    while True:
        db.execute("BEGIN IMMEDIATE")
        rows = db.execute(
            "UPDATE messages SET state = 1, attempts = attempts + 1 WHERE seq IN"
            " (SELECT seq FROM messages WHERE state = 0 ORDER BY priority, seq LIMIT ?)"
            " RETURNING seq, caller, request_id",
            (BATCH,),
        ).fetchall()
        db.execute("COMMIT")
        if not rows:
            break
        db.execute("BEGIN IMMEDIATE")
        db.executemany("DELETE FROM messages WHERE seq = ?", [(r[0],) for r in rows])
        db.executemany(
            "INSERT OR REPLACE INTO answers (caller, request_id, answer, answered_at)"
            " VALUES (?, ?, ?, ?)",
            [(r[1], r[2], b"answer", now) for r in rows],
        )
        db.execute("COMMIT")
    drain = n / (time.perf_counter() - t0)
    db.close()
    return enqueue, drain


async def mailbox(path: Path, n: int, producers: int) -> tuple[float, float]:
    box = await Mailbox.open(path, limits=MailboxLimits(max_messages=10 * n))
    per = n // producers
    ids = iter(range(n))

    async def produce(p: int) -> None:
        for _ in range(per):
            await box.enqueue(
                caller="caller",
                request_id=f"r{next(ids)}",
                priority=1,
                payload_type=0,
                envelope=ENVELOPE,
            )

    t0 = time.perf_counter()
    await asyncio.gather(*(produce(p) for p in range(producers)))
    enqueue = per * producers / (time.perf_counter() - t0)

    # As the runtime does: acks go out without waiting and commit together with the
    # next dequeue (group commit); every ack is awaited before the clock stops.
    t0 = time.perf_counter()
    acks: list[asyncio.Future[None]] = []
    while batch := await box.dequeue(BATCH):
        acks.extend(box.ack_nowait(r, b"answer") for r in batch)
    # Batches commit in the order their operations were submitted: once the last
    # ack resolved, every one did; each is checked for an error without a callback.
    await acks[-1]
    for ack in acks:
        ack.result()
    drain = len(acks) / (time.perf_counter() - t0)
    await box.close()
    return enqueue, drain


def main() -> int:
    parser = argparse.ArgumentParser(description="actr mailbox vs raw sqlite3")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--producers", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5, help="alternating raw/mailbox runs")
    args = parser.parse_args()
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    raw: list[tuple[float, float]] = []
    box: list[tuple[float, float]] = []
    # Alternate the two, each on a fresh file, and report medians, so a burst of
    # load from elsewhere on the machine does not decide the ratio.
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="actr-bench-mbx-") as tmp:
            raw.append(raw_sqlite(Path(tmp) / f"raw{r}.db", args.messages))
            box.append(run(mailbox(Path(tmp) / f"box{r}.db", args.messages, args.producers)))
    print(f"median of {args.rounds} rounds of {args.messages} messages each")
    print(f"{'msg/s':<34}{'raw sqlite3':>12}{'mailbox':>12}{'mailbox/raw':>13}")
    for label, k in [(f"enqueue, {args.producers} producers", 0), ("dequeue + ack", 1)]:
        r_med = statistics.median(x[k] for x in raw)
        b_med = statistics.median(x[k] for x in box)
        ratio = statistics.median(b[k] / a[k] for a, b in zip(raw, box, strict=True))
        print(f"{label:<34}{r_med:>12,.0f}{b_med:>12,.0f}{ratio:>13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
