"""The mailbox's operations and settings: what a batch is made of (``MailboxCore.apply``
in actr/mailbox_rules.py takes a list of these) and what each one's result is. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from actr.mailbox_store import MailboxRecord

__all__ = [
    "Ack",
    "Bury",
    "Dequeue",
    "Enqueue",
    "EnqueueResult",
    "Fail",
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
    # What a commit survives (actr.mailbox_store.DURABILITIES): "process" commits on
    # the event loop's thread (synchronous=NORMAL, ~25 us), "power" on a thread of its
    # own (synchronous=FULL: an fsync per commit, which must not block the loop).
    durability: str = "process"


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
